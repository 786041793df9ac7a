// Who is who on the wire: roles, sign-in providers, and the /auth and /.well-known answers the CLI and the web app read.

/** Strongest first: an email on several lists holds the first. */
const ROLES = ["owner", "member", "viewer"] as const;
export type Role = (typeof ROLES)[number];

/** The roles an owner may grant through the API; owners come from the settings only. */
export const GRANTABLE_ROLES = ["member", "viewer"] as const satisfies readonly Role[];
export type GrantableRole = (typeof GRANTABLE_ROLES)[number];

/** Viewers only read; owners and members may change things. */
export function canWrite(role: string): boolean {
  return role === "owner" || role === "member";
}

/** Who signs users in: Outpost's own device login and enrollment links, or a Supabase project. */
export const PROVIDERS = ["outpost", "supabase"] as const;
export type Provider = (typeof PROVIDERS)[number];

/** GET /auth/me. `expiresAt` is the credential's expiry in seconds since the epoch. */
export interface Me {
  sub: string;
  email: string;
  role: Role;
  provider: Provider;
  deviceId: string | null;
  expiresAt: number;
}

/**
 * GET /.well-known/openid-configuration and /.well-known/oauth-authorization-server: OAuth 2.0 Authorization Server
 * Metadata (RFC 8414), plus Outpost's own `auth_provider` and Supabase fields.
 */
export interface OpenIdConfiguration {
  issuer: string;
  jwks_uri: string;
  device_authorization_endpoint: string;
  token_endpoint: string;
  revocation_endpoint: string;
  grant_types_supported: string[];
  response_types_supported: string[];
  token_endpoint_auth_methods_supported: string[];
  revocation_endpoint_auth_methods_supported: string[];
  auth_provider: Provider;
  supabase_url?: string;
  supabase_anon_key?: string;
}

// --- OAuth (RFC 6749, RFC 8628 device login, RFC 7009 revocation)

/** RFC 8628's grant type at the token endpoint. */
export const DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";

/** The client_id the Outpost CLI names (a public client: no secret, RFC 6749 §2.1). */
export const CLI_CLIENT_ID = "outpost-cli";

/** Every `error` the OAuth endpoints answer with (RFC 6749 §5.2 and §4.1.2.1, RFC 8628 §3.5, RFC 7009 §2.2.1). */
export type OAuthErrorCode =
  | "invalid_request"
  | "invalid_client"
  | "invalid_grant"
  | "unsupported_grant_type"
  | "invalid_scope"
  | "authorization_pending"
  | "slow_down"
  | "access_denied"
  | "expired_token"
  | "unsupported_token_type"
  | "server_error"
  | "temporarily_unavailable";

/**
 * The error body of the OAuth endpoints (/auth/device/code, /auth/device/token, /auth/token, /auth/revoke): RFC 6749
 * §5.2's shape, not Outpost's ErrorBody. `interval` (an extension) is the polling interval the client must now keep,
 * on authorization_pending and slow_down.
 */
export interface OAuthErrorBody {
  error: OAuthErrorCode;
  error_description?: string;
  interval?: number;
}

/** POST /auth/device/code (RFC 8628 §3.2). */
export interface DeviceCodeResponse {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete?: string;
  expires_in: number;
  /** Seconds between polls; slow_down adds 5 s (and names the new interval in its `interval` field). */
  interval?: number;
}

/** The token endpoint's answer (RFC 6749 §5.1) to the device grant and refresh_token: the tokens of a CLI device. */
export interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in: number;
  refresh_token: string;
  /** An extension: the device these tokens belong to (`outpost devices` marks it as this computer). */
  device_id: string;
}

/**
 * A pending CLI login as the approver sees it (POST /auth/device/lookup and /auth/device/approve). `clientName`,
 * `hostname`, `platform` and `arch` are what the computer claims; `ip` and the place are what the edge saw.
 */
export interface LoginRequest {
  userCode: string;
  clientName: string;
  hostname: string;
  platform: string;
  arch: string;
  ip: string;
  /** "City, CC" as one line (older field; `city` and `country` are the parts). */
  location: string;
  /** ISO 3166-1 alpha-2 country of the requesting network (Cloudflare's; "T1" is Tor, "XX" unknown), "" when unknown. */
  country: string;
  city: string;
  /** The requesting network's autonomous system: its number (null when unknown) and organization ("" when unknown). */
  asn: number | null;
  asOrganization: string;
  createdAt: number;
  expiresAt: number;
}

/** POST /auth/device/lookup, whose body is `{ user_code, source?: "typed" | "link" }` ("link": opened from `#code=`). */
export interface LoginLookup {
  request: LoginRequest;
  /**
   * "second_half": the code was opened from a link (RFC 8628 §5.4), so POST /auth/device/approve takes `confirm`, the
   * code's last four letters (or the whole code) as typed from the computer's screen; "none": no confirmation needed.
   */
  confirmation: "none" | "second_half";
  /** The approving phone's country as the edge sees it now (same codes as `request.country`), "" when unknown. */
  approverCountry: string;
  /** Both countries are known and differ: the page warns before anything is approved. */
  countryMismatch: boolean;
}

// --- browsers

/** POST /auth/enroll and /auth/refresh: a browser's access token; its refresh token stays in an HttpOnly cookie. */
export interface BrowserSession {
  access_token: string;
  token_type: string;
  expires_in: number;
  device_id: string;
  email: string;
  role: Role;
}

/** POST /auth/ws-ticket: a single-use ticket for a WebSocket upgrade (browsers cannot send headers there). */
export interface WsTicket {
  ticket: string;
  expires_in: number;
}

/** POST /auth/scoped: a same-origin link that opens one path prefix of the origin for `expires_in` seconds. */
export interface ScopedAccess {
  url: string;
  prefix: string;
  expires_in: number;
}

/**
 * What a page opened with scoped access may do, as sandbox tokens: the web app's frame attribute and the edge's CSP
 * `sandbox` on every response the scoped cookie opens. No `allow-same-origin`: the page runs in an opaque origin, so
 * it cannot reach the web app, its storage or `/auth/*`; `allow-same-site-none-cookies` lets its requests carry the
 * scoped cookie (SameSite=None) while the top-level page is the web app's.
 */
export const SCOPED_SANDBOX = "allow-scripts allow-forms allow-same-site-none-cookies";

/** POST /api/enroll-links (owners): a single-use sign-in link for one email. */
export interface EnrollLink {
  url: string;
  expires_in: number;
}

// --- the access list (owners)

/** The furthest ahead a grant may end: an `expiresAt` later than this from now is refused. */
export const MAX_GRANT_DAYS = 366;

/**
 * PUT /api/access/:email. `expiresAt` is when the grant ends: an ISO 8601 date and time with a time zone
 * (`2025-07-01T18:00:00Z`, `2025-07-01T20:00:00+02:00`), in the future and at most MAX_GRANT_DAYS away; absent or null,
 * the grant does not end. A PUT replaces the grant, its expiry included.
 */
export interface GrantRequest {
  role: GrantableRole;
  expiresAt?: string | null;
}

/** One entry of the access list; `expiresAt` (ISO 8601, UTC) is null for entries that do not end, settings' included. */
export type AccessEntry =
  | { source: "settings"; email: string; role: Role; expiresAt: null }
  | { source: "granted"; email: string; role: GrantableRole; grantedBy: string; grantedAt: number; expiresAt: string | null };

/** GET /api/access: the settings' entries first, then the grants that are still running. */
export interface AccessList {
  entries: AccessEntry[];
}

/** PUT /api/access/:email. */
export interface GrantResponse {
  entry: Extract<AccessEntry, { source: "granted" }>;
}
