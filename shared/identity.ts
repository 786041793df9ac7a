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

/** The part of GET /.well-known/openid-configuration clients act on (the rest is standard discovery metadata). */
export interface OpenIdConfiguration {
  issuer: string;
  jwks_uri: string;
  device_authorization_endpoint: string;
  token_endpoint: string;
  revocation_endpoint: string;
  auth_provider: Provider;
  supabase_url?: string;
  supabase_anon_key?: string;
}

// --- the device login (RFC 8628)

/** POST /auth/device/code. */
export interface DeviceCodeResponse {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete?: string;
  expires_in: number;
  /** Seconds between polls; a slow_down answer names the new one in Retry-After. */
  interval?: number;
}

/** POST /auth/device/token (the device grant, and refresh_token): the tokens of a CLI device. */
export interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in: number;
  refresh_token: string;
  device_id: string;
}

/** A pending CLI login as the approver sees it (POST /auth/device/lookup and /auth/device/approve). */
export interface LoginRequest {
  userCode: string;
  clientName: string;
  hostname: string;
  platform: string;
  arch: string;
  ip: string;
  location: string;
  createdAt: number;
  expiresAt: number;
}

/** POST /auth/device/lookup. */
export interface LoginLookup {
  request: LoginRequest;
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
