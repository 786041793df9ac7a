// CORS against the exact allowlist from config; preflights are answered here and never reach the origin.
import { cors } from "hono/cors";
import { getConfig } from "../config.ts";
import type { AppEnv } from "../types.ts";
import type { Context, MiddlewareHandler } from "hono";

export interface EdgeCorsOptions {
  /** Seconds browsers may cache a preflight. */
  maxAge?: number;
}

export function edgeCors(options: EdgeCorsOptions = {}): MiddlewareHandler<AppEnv> {
  const maxAge = options.maxAge ?? 600;
  if (!Number.isInteger(maxAge) || maxAge < 0) throw new TypeError("edgeCors: maxAge must be a non-negative integer");
  const allowed = (origin: string, c: Context<AppEnv>) => {
    const config = getConfig(c.env);
    return config.ok && config.config.corsOrigins.has(origin) ? origin : null;
  };
  const handler = cors({
    origin: allowed,
    allowMethods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
    exposeHeaders: ["X-Request-Id", "Retry-After"],
    credentials: true,
    maxAge,
  }) as MiddlewareHandler<AppEnv>;
  return async (c, next) => {
    const res = await handler(c, next);
    if (res) return res;
    // The origin's own CORS answer must not widen the allowlist (e.g. an origin reflecting any Origin).
    if (!allowed(c.req.header("origin") ?? "", c)) {
      try {
        c.res.headers.delete("Access-Control-Allow-Origin");
      } catch {
        // immutable headers (a WebSocket 101): nothing to remove
      }
    }
  };
}
