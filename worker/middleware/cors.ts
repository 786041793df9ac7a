// CORS against the exact allowlist from config; preflights are answered here and never reach the origin.
import { REQUEST_ID_HEADER } from "../../shared/paths.ts";
import { createMiddleware } from "hono/factory";
import { getConfig } from "../../shared/settings/index.ts";
import type { AppEnv } from "../types.ts";

export interface EdgeCorsOptions {
  /** Seconds browsers may cache a preflight. */
  maxAge?: number;
  allowMethods?: readonly string[];
  exposeHeaders?: readonly string[];
}

export function edgeCors(options: EdgeCorsOptions = {}) {
  const maxAge = options.maxAge ?? 600;
  if (!Number.isInteger(maxAge) || maxAge < 0) throw new TypeError("edgeCors: maxAge must be a non-negative integer");
  const allowMethods = (options.allowMethods ?? ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]).join(",");
  const exposeHeaders = (options.exposeHeaders ?? [REQUEST_ID_HEADER, "Retry-After"]).join(",");

  return createMiddleware<AppEnv>(async function edgeCors(c, next) {
    const origin = c.req.header("origin");
    let allowed = false;
    if (origin) {
      const config = getConfig(c.env);
      allowed = config.ok && config.config.corsOrigins.has(origin);
    }
    if (c.req.method === "OPTIONS") {
      const headers = new Headers({ Vary: "Origin, Access-Control-Request-Headers" });
      if (allowed) {
        headers.set("Access-Control-Allow-Origin", origin!);
        headers.set("Access-Control-Allow-Credentials", "true");
        headers.set("Access-Control-Allow-Methods", allowMethods);
        headers.set("Access-Control-Max-Age", String(maxAge));
        const requested = c.req.header("access-control-request-headers");
        if (requested) headers.set("Access-Control-Allow-Headers", requested);
      }
      return new Response(null, { status: 204, headers });
    }

    await next();

    let headers = c.res.headers;
    // The origin's own CORS answer never widens the allowlist (an origin reflecting any Origin, say).
    const foreign = headers.has("access-control-allow-origin") || headers.has("access-control-allow-credentials");
    if (!allowed && !foreign) {
      appendVary(headers);
      return;
    }
    try {
      headers.delete("access-control-allow-origin");
    } catch {
      // Immutable headers (a response straight from fetch): copy once, then edit.
      c.res = new Response(c.res.body, c.res);
      headers = c.res.headers;
      headers.delete("access-control-allow-origin");
    }
    headers.delete("access-control-allow-credentials");
    if (allowed) {
      headers.set("Access-Control-Allow-Origin", origin!);
      headers.set("Access-Control-Allow-Credentials", "true");
      headers.set("Access-Control-Expose-Headers", exposeHeaders);
    }
    appendVary(headers);
  });
}

/** Responses differ by Origin, so shared caches must key on it; immutable responses are left as they are. */
function appendVary(headers: Headers): void {
  try {
    headers.append("Vary", "Origin");
  } catch {
    // a response from fetch() or the assets binding: its caching is its own
  }
}
