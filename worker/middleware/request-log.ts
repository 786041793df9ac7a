// Gives every request an id, echoes it as X-Request-Id, and writes one structured log line per request.
import { REQUEST_ID_HEADER } from "../../shared/paths.ts";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../types.ts";

export interface RequestLogOptions {
  /** Where log lines go; defaults to console.log (Workers Logs picks up JSON lines). */
  sink?: (line: string) => void;
}

const REQUEST_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

export function requestLog(options: RequestLogOptions = {}) {
  const sink = options.sink ?? ((line: string) => console.log(line));
  if (typeof sink !== "function") throw new TypeError("requestLog: sink must be a function");

  return createMiddleware<AppEnv>(async function requestLog(c, next) {
    const started = performance.now();
    const incoming = c.req.header(REQUEST_ID_HEADER);
    const requestId = incoming && REQUEST_ID.test(incoming) ? incoming : crypto.randomUUID();
    c.set("requestId", requestId);
    await next();
    // A WebSocket 101 response has immutable headers in some runtimes; the id still reaches the origin.
    try {
      c.res.headers.set(REQUEST_ID_HEADER, requestId);
    } catch {
      // immutable headers: nothing to add
    }
    const entry: Record<string, unknown> = {
      msg: "request",
      method: c.req.method,
      // Only the path: query strings may carry single-use tickets.
      path: new URL(c.req.url).pathname,
      status: c.res.status,
      durationMs: Math.round((performance.now() - started) * 100) / 100,
      requestId,
    };
    const detail = c.get("errorDetail");
    if (detail) entry.detail = detail;
    sink(JSON.stringify(entry));
  });
}
