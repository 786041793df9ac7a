// Request checks shared by the auth routes: per-IP rate limits and the same-site Origin rule for browser calls.
import type { Context } from "hono";
import { getConfig } from "../../shared/settings/index.ts";
import { OutpostError } from "../../shared/errors.ts";
import type { AppEnv } from "../types.ts";

export function clientIp(c: Context<AppEnv>): string {
  return c.req.header("cf-connecting-ip") ?? "local";
}

/** Per-IP limit for endpoints anyone can call. */
export async function limitByIp(c: Context<AppEnv>, bucket: string): Promise<void> {
  const { success } = await c.env.AUTH_LIMITER.limit({ key: `${bucket}:${clientIp(c)}` });
  if (!success) {
    throw new OutpostError("RATE_LIMITED", "Too many requests; try again in a minute.", { headers: { "Retry-After": "60" } });
  }
}

/** State-changing browser calls must come from a page of ours: the allowlist or this very origin. */
export function assertSameSiteOrigin(c: Context<AppEnv>): void {
  const origin = c.req.header("origin");
  const config = getConfig(c.env);
  const allowed = origin && (origin === new URL(c.req.url).origin || (config.ok && config.config.corsOrigins.has(origin)));
  if (!allowed) throw new OutpostError("FORBIDDEN_ORIGIN", "This request must come from the Outpost web app.");
}
