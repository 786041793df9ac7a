// One error type and one JSON error shape for every response the edge produces itself.
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";

export type ErrorCode =
  | "BAD_REQUEST"
  | "BAD_PATH"
  | "NOT_FOUND"
  | "METHOD_NOT_ALLOWED"
  | "FORBIDDEN_ORIGIN"
  | "PAYLOAD_TOO_LARGE"
  | "CONFIG_INVALID"
  | "ORIGIN_UNREACHABLE"
  | "ORIGIN_TIMEOUT"
  | "AUTH_REQUIRED"
  | "AUTH_INVALID"
  | "FORBIDDEN"
  | "RATE_LIMITED"
  | "CONFLICT"
  | "INTERNAL"
  // OAuth device-flow errors keep their RFC 8628 names so clients can branch on them.
  | "authorization_pending"
  | "slow_down"
  | "access_denied"
  | "expired_token"
  | "invalid_grant"
  | "invalid_request"
  | "unsupported_grant_type";

/** An error the edge answers with; `message` is safe to show to clients, `detail` goes to logs only. */
export class OutpostError extends Error {
  readonly code: ErrorCode;
  readonly status: ContentfulStatusCode;
  readonly detail: string | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(
    code: ErrorCode,
    status: ContentfulStatusCode,
    message: string,
    options: { detail?: string; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = "OutpostError";
    this.code = code;
    this.status = status;
    this.detail = options.detail;
    this.headers = options.headers;
  }
}

export interface ErrorBody {
  error: { code: string; message: string; requestId: string };
}

export function errorBody(code: string, message: string, requestId: string): ErrorBody {
  return { error: { code, message, requestId } };
}

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
