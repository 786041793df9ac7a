// Renders errors as the one JSON error shape (shared/errors.ts) for every response the edge produces itself.
import type { Context } from "hono";
import { errorBody, OutpostError } from "../shared/errors.ts";

/** Renders any thrown value as the standard error shape; unknown errors become a generic 500. */
export function errorResponse(c: Context, err: unknown): Response {
  const requestId: string = c.get("requestId") ?? "";
  if (err instanceof OutpostError) {
    if (err.detail) c.set("errorDetail", err.detail);
    const res = c.json(errorBody(err.code, err.message, requestId), err.status);
    for (const [k, v] of Object.entries(err.headers ?? {})) res.headers.set(k, v);
    return res;
  }
  c.set("errorDetail", err instanceof Error ? `${err.name}: ${err.message}` : String(err));
  return c.json(errorBody("INTERNAL", "Internal error.", requestId), 500);
}
