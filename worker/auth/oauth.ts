// OAuth's wire format on the OAuth endpoints: RFC 6749 §5.2 error bodies, §5.1's no-store headers, public clients only.
import type { Context } from "hono";
import { OutpostError, type ErrorCode, type OutpostErrorOptions } from "../../shared/errors.ts";
import type { OAuthErrorBody, OAuthErrorCode } from "../../shared/identity.ts";
import type { AppEnv } from "../types.ts";

/** An OAuth error; `interval` (an extension) tells a polling client the interval it must keep from now on. */
export class OAuthError extends OutpostError {
  readonly interval: number | undefined;

  constructor(code: ErrorCode & OAuthErrorCode, message: string, options: OutpostErrorOptions & { interval?: number } = {}) {
    super(code, message, options);
    this.interval = options.interval;
  }
}

type OAuthStatus = 400 | 401 | 405 | 413 | 429 | 500 | 503;

/**
 * How an error reads on an OAuth endpoint. OAuth's own codes keep their status (400; invalid_client 401). Outpost's
 * codes become the nearest OAuth one: a malformed request is invalid_request (400, or 413/405 for an oversized body or
 * a wrong method, which are HTTP's to answer), a rate limit is slow_down with 429 and Retry-After, a gateway that is
 * not configured is temporarily_unavailable (503), anything else server_error (500).
 */
function asOAuth(err: OutpostError): { error: OAuthErrorCode; status: OAuthStatus } {
  switch (err.code) {
    case "invalid_request":
    case "invalid_grant":
    case "unsupported_grant_type":
    case "invalid_scope":
    case "authorization_pending":
    case "slow_down":
    case "access_denied":
    case "expired_token":
    case "unsupported_token_type":
      return { error: err.code, status: 400 };
    case "invalid_client":
      return { error: "invalid_client", status: 401 };
    case "BAD_REQUEST":
    case "BAD_PATH":
    case "INVALID_JSON":
    case "VALIDATION_FAILED":
    case "UNSUPPORTED_MEDIA_TYPE":
      return { error: "invalid_request", status: 400 };
    case "PAYLOAD_TOO_LARGE":
      return { error: "invalid_request", status: 413 };
    case "METHOD_NOT_ALLOWED":
      return { error: "invalid_request", status: 405 };
    case "RATE_LIMITED":
      return { error: "slow_down", status: 429 };
    case "CONFIG_INVALID":
      return { error: "temporarily_unavailable", status: 503 };
    default:
      return { error: "server_error", status: 500 };
  }
}

/** RFC 6749 §5.2: error_description is printable ASCII without `"` and `\`. */
function description(text: string): string {
  return text
    .replace(/["\u2018\u2019]/g, "'")
    .replace(/\\/g, "/")
    .replace(/\u2026/g, "...")
    .replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, "");
}

/** RFC 6749 §5.1: token answers, errors included, are never stored by a cache. */
function noStore(headers: Headers): void {
  headers.set("Cache-Control", "no-store");
  headers.set("Pragma", "no-cache");
}

function errorResponse(c: Context<AppEnv>, err: unknown): Response {
  const known = err instanceof OutpostError ? err : null;
  if (known?.detail) c.set("errorDetail", known.detail);
  if (!known) c.set("errorDetail", err instanceof Error ? `${err.name}: ${err.message}` : String(err));
  const { error, status } = known ? asOAuth(known) : { error: "server_error" as const, status: 500 as const };
  const body: OAuthErrorBody = { error, error_description: known ? description(known.message) : "Internal error." };
  if (err instanceof OAuthError && err.interval !== undefined) body.interval = err.interval;
  const res = c.json(body, status);
  for (const [name, value] of Object.entries(known?.headers ?? {})) res.headers.set(name, value);
  noStore(res.headers);
  return res;
}

/** Wraps an OAuth endpoint: its answers carry no-store, and whatever it throws is answered in OAuth's error shape. */
export function oauthEndpoint(handler: (c: Context<AppEnv>) => Promise<Response>): (c: Context<AppEnv>) => Promise<Response> {
  return async (c) => {
    try {
      const res = await handler(c);
      noStore(res.headers);
      return res;
    } catch (err) {
      return errorResponse(c, err);
    }
  };
}

/** Any method but POST on an OAuth endpoint (RFC 6749 §3.2, RFC 8628 §3.1, RFC 7009 §2.1 all ask for POST). */
export const postOnly = oauthEndpoint(async () => {
  throw new OutpostError("METHOD_NOT_ALLOWED", "Use POST.", { headers: { Allow: "POST" } });
});

const AUTH_SCHEME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+/;

/**
 * Outpost's clients are public (RFC 6749 §2.1), so no client authentication is supported: a request that tries one is
 * invalid_client, with the challenge of the scheme it used when it used the Authorization header (RFC 6749 §5.2).
 */
export function assertPublicClient(c: Context<AppEnv>, params: Record<string, string>): void {
  const header = c.req.header("authorization");
  if (header !== undefined) {
    const scheme = AUTH_SCHEME.exec(header.trim())?.[0] ?? "Basic";
    throw new OAuthError("invalid_client", "Client authentication is not supported: Outpost's clients are public.", {
      headers: { "WWW-Authenticate": `${scheme} realm="outpost"` },
    });
  }
  if (params.client_secret !== undefined || params.client_assertion !== undefined) {
    throw new OAuthError("invalid_client", "Client authentication is not supported: Outpost's clients are public.");
  }
}

/** RFC 6749 Appendix A.1: a client_id is printable ASCII; Outpost keeps it short. */
const CLIENT_ID = /^[\x20-\x7e]{1,128}$/;

/** The request's client_id; "" when it is optional and absent. */
export function clientIdOf(params: Record<string, string>, required: boolean): string {
  const id = params.client_id;
  if (id === undefined) {
    if (required) throw new OAuthError("invalid_request", "The client_id parameter is required.");
    return "";
  }
  if (!CLIENT_ID.test(id)) throw new OAuthError("invalid_request", "The client_id must be at most 128 printable ASCII characters.");
  return id;
}

/** A required parameter of at most `max` characters. */
export function requiredParam(params: Record<string, string>, name: string, max: number): string {
  const value = params[name];
  if (value === undefined) throw new OAuthError("invalid_request", `The ${name} parameter is required.`);
  if (value.length > max) throw new OAuthError("invalid_request", `The ${name} parameter is longer than ${max} characters.`);
  return value;
}

/** Outpost defines no scopes: a request for any is invalid_scope (RFC 6749 §3.3, §5.2). */
export function refuseScope(params: Record<string, string>): void {
  if (params.scope !== undefined) throw new OAuthError("invalid_scope", "This server defines no scopes; omit the scope parameter.");
}
