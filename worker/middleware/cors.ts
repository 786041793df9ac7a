// CORS against the exact allowlist from config; preflights are answered here and never reach the origin.
import { cors } from "hono/cors";
import { getConfig } from "../config.ts";
import type { AppEnv } from "../types.ts";
import type { MiddlewareHandler } from "hono";

export interface EdgeCorsOptions {
  /** Seconds browsers may cache a preflight. */
  maxAge?: number;
}

export function edgeCors(options: EdgeCorsOptions = {}): MiddlewareHandler<AppEnv> {
  const maxAge = options.maxAge ?? 600;
  if (!Number.isInteger(maxAge) || maxAge < 0) throw new TypeError("edgeCors: maxAge must be a non-negative integer");
  return cors({
    origin: (origin, c) => {
      const config = getConfig(c.env);
      return config.ok && config.config.corsOrigins.has(origin) ? origin : null;
    },
    allowMethods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
    exposeHeaders: ["X-Request-Id", "Retry-After"],
    credentials: true,
    maxAge,
  }) as MiddlewareHandler<AppEnv>;
}
