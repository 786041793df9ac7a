// The one error vocabulary of the edge and the origin: every code, the status it maps to, the JSON body, the error class.

/**
 * Every error code either side answers with, and its HTTP status: one table, so a code always means one status.
 * The lower-case codes are OAuth's (RFC 6749 §5.2, RFC 8628 §3.5, RFC 7009 §2.2.1) and keep their registered names;
 * the OAuth endpoints answer them in the RFC's shape (OAuthErrorBody in identity.ts), never in ErrorBody.
 */
export const ERROR_STATUS = {
  BAD_REQUEST: 400,
  BAD_PATH: 400,
  INVALID_JSON: 400,
  VALIDATION_FAILED: 400,
  CONFIRMATION_REQUIRED: 400,
  CONFIRMATION_MISMATCH: 400,
  AUTH_REQUIRED: 401,
  AUTH_INVALID: 401,
  FORBIDDEN: 403,
  FORBIDDEN_ORIGIN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UPGRADE_REQUIRED: 426,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  ORIGIN_UNREACHABLE: 502,
  UPSTREAM_UNREACHABLE: 502,
  CONFIG_INVALID: 503,
  ORIGIN_TIMEOUT: 504,
  authorization_pending: 400,
  slow_down: 400,
  access_denied: 400,
  expired_token: 400,
  invalid_grant: 400,
  invalid_request: 400,
  invalid_client: 401,
  unsupported_grant_type: 400,
  invalid_scope: 400,
  unsupported_token_type: 400,
} as const satisfies Record<string, number>;

export type ErrorCode = keyof typeof ERROR_STATUS;
export type ErrorStatus = (typeof ERROR_STATUS)[ErrorCode];

/** The JSON body of every error the edge or the origin produces itself (OAuth endpoints aside). */
export interface ErrorBody {
  error: { code: string; message: string; requestId: string };
}

export function errorBody(code: string, message: string, requestId: string): ErrorBody {
  return { error: { code, message, requestId } };
}

export interface OutpostErrorOptions {
  /** Log-only detail; never sent to clients. */
  detail?: string;
  headers?: Record<string, string>;
  cause?: unknown;
}

/** An error either side answers with: `message` is safe to show to clients, `detail` goes to logs only. */
export class OutpostError extends Error {
  readonly code: ErrorCode;
  readonly status: ErrorStatus;
  readonly detail: string | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(code: ErrorCode, message: string, options: OutpostErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "OutpostError";
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.detail = options.detail;
    this.headers = options.headers;
  }
}
