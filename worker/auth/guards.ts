// Request checks shared by the auth routes: rate limits per network and per token, and the same-site Origin rule.
import type { Context } from "hono";
import { getConfig } from "../../shared/settings/index.ts";
import { OutpostError } from "../../shared/errors.ts";
import type { AppEnv } from "../types.ts";
import { tokenKey } from "./identity-cache.ts";
import { networkOf } from "./network.ts";

/** The client's address as Cloudflare saw it (shown to the approver of a login); `local` without one. */
export function clientIp(c: Context<AppEnv>): string {
  return c.req.header("cf-connecting-ip") ?? "local";
}

/** The network the client's limits are kept for: its IPv4 address, or the /64 of its IPv6 address. */
export function clientNetwork(c: Context<AppEnv>): string {
  return networkOf(clientIp(c));
}

async function limit(c: Context<AppEnv>, key: string): Promise<void> {
  const { success } = await c.env.AUTH_LIMITER.limit({ key });
  if (!success) {
    throw new OutpostError("RATE_LIMITED", "Too many requests; try again in a minute.", { headers: { "Retry-After": "60" } });
  }
}

/** Per-network limit for endpoints anyone can call (IPv6 clients are counted per /64). */
export async function limitByIp(c: Context<AppEnv>, bucket: string): Promise<void> {
  await limit(c, `${bucket}:${clientNetwork(c)}`);
}

/**
 * Per-token limit, for endpoints that take a token anyone may send from anywhere: many networks replaying one token
 * still reach the account object no faster than this. The key is the token's SHA-256, never the token.
 */
export async function limitByToken(c: Context<AppEnv>, bucket: string, token: string): Promise<void> {
  await limit(c, `${bucket}:token:${await tokenKey(token)}`);
}

/** State-changing browser calls must come from a page of ours: the allowlist or this very origin. */
export function assertSameSiteOrigin(c: Context<AppEnv>): void {
  const origin = c.req.header("origin");
  const config = getConfig(c.env);
  const allowed = origin && (origin === new URL(c.req.url).origin || (config.ok && config.config.corsOrigins.has(origin)));
  if (!allowed) throw new OutpostError("FORBIDDEN_ORIGIN", "This request must come from the Outpost web app.");
}
