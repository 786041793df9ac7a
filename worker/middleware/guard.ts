// Refuses requests that must never reach routing: forbidden methods, encoded traversal, oversized declared bodies.
import { createMiddleware } from "hono/factory";
import { getConfig } from "../../shared/settings/index.ts";
import { OutpostError } from "../../shared/errors.ts";
import type { AppEnv } from "../types.ts";

export interface GuardOptions {
  /** Methods answered with 405 before routing. */
  forbiddenMethods?: readonly string[];
}

// Encoded dot, slash, backslash, semicolon, percent (double encoding) and control characters: each can turn
// a path that looks safe at the edge into a different one at the origin (";" starts path parameters to Tomcat-style
// servers, so "/api/x%3B/../admin" can decode there to a path outside the prefix the edge checked).
const ENCODED_DANGER = /%(?:2e|2f|5c|3b|25|[01][0-9a-f]|7f)/i;

export function guard(options: GuardOptions = {}) {
  const forbidden = new Set((options.forbiddenMethods ?? ["TRACE", "TRACK", "CONNECT"]).map((m) => m.toUpperCase()));
  if ([...forbidden].some((m) => !/^[A-Z]+$/.test(m))) throw new TypeError("guard: forbiddenMethods must be method names");

  return createMiddleware<AppEnv>(async function guard(c, next) {
    if (forbidden.has(c.req.method.toUpperCase())) {
      throw new OutpostError("METHOD_NOT_ALLOWED", "This method is not allowed.", {
        headers: { Allow: "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS" },
      });
    }
    const url = c.req.url;
    const pathStart = url.indexOf("/", url.indexOf("//") + 2);
    const queryStart = url.indexOf("?", pathStart);
    const rawPath = url.slice(pathStart, queryStart === -1 ? undefined : queryStart);
    // "..;" is a dot segment to Tomcat-style servers but not to URL parsers: a way out of a scoped prefix upstream.
    if (ENCODED_DANGER.test(rawPath) || rawPath.includes("\\") || rawPath.includes("..;")) {
      throw new OutpostError("BAD_PATH", "The request path contains an encoded separator or traversal.");
    }
    const declared = c.req.header("content-length");
    if (declared !== undefined) {
      if (!/^\d+$/.test(declared)) throw new OutpostError("BAD_REQUEST", "Content-Length is not a number.");
      const config = getConfig(c.env);
      const cap = config.ok ? config.config.maxBodyBytes : Number.POSITIVE_INFINITY;
      if (Number(declared) > cap) {
        throw new OutpostError("PAYLOAD_TOO_LARGE", `The request body is larger than ${cap} bytes.`);
      }
    }
    await next();
  });
}
