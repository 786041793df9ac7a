// Authenticates every protected request: bearer token, WebSocket ticket or scoped cookie, then the role check.
import type { Context } from "hono";
import { getCookie } from "hono/cookie";
import { createMiddleware } from "hono/factory";
import { OutpostError } from "../../shared/errors.ts";
import type { AppEnv } from "../types.ts";
import { accountStub } from "../../durable-objects/account/index.ts";
import type { Role } from "../../shared/identity.ts";
import { getAuthConfig, roleFor, type AuthConfig } from "../../shared/settings/index.ts";
import { grantedRoles } from "./grants.ts";
import { cachedDeviceStatus, cachedIdentity, rememberDeviceStatus, rememberIdentity, tokenKey } from "./identity-cache.ts";
import { authRequired, invalidToken, verifyOwn, verifyUserToken, type Identity } from "./tokens.ts";

export const SCOPED_COOKIE = "outpost_scoped";
const BEARER = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/;
const READ_METHODS = new Set(["GET", "HEAD"]);

export interface RequireAuthOptions {
  /** Accept a single-use ticket in `?ticket=` on WebSocket upgrades (browsers cannot set headers there). */
  wsTicket?: boolean;
  /** Accept the scoped-access cookie for paths under its prefix. */
  scopedCookie?: boolean;
  /** Only owners may pass. */
  ownerOnly?: boolean;
  /** A POST that changes only the caller's own sign-in state (approving their CLI, a ticket): viewers may too. */
  selfService?: boolean;
  /** Count writes against the caller's WRITE_LIMITER budget (off only where a route has finer limits of its own). */
  limitWrites?: boolean;
}

export function authConfigOf(c: Context<AppEnv>): AuthConfig {
  const result = getAuthConfig(c.env);
  if (!result.ok) {
    throw new OutpostError("CONFIG_INVALID", "The gateway is not configured; see /ready.", {
      detail: result.problems.map((p) => p.setting).join(","),
    });
  }
  return result.auth;
}

export function requireAuth(options: RequireAuthOptions = {}) {
  const { wsTicket = false, scopedCookie = false, ownerOnly = false, selfService = false, limitWrites = true } = options;
  return createMiddleware<AppEnv>(async function requireAuth(c, next) {
    const auth = authConfigOf(c);
    if (!auth.hasOwner) {
      throw new OutpostError("FORBIDDEN", "No owner is configured for this gateway.", { detail: "OWNER_EMAILS empty" });
    }
    const granted = await grantedRoles(c.env);
    const identity = await authenticate(c, auth, granted, { wsTicket, scopedCookie });
    if (identity.deviceId) await assertDeviceActive(c, auth, identity.deviceId);
    if (ownerOnly && identity.role !== "owner") {
      throw new OutpostError("FORBIDDEN", "Only an owner can do this.");
    }
    if (identity.role === "viewer" && !selfService && !READ_METHODS.has(c.req.method)) {
      throw new OutpostError("FORBIDDEN", "Viewers can only read.");
    }
    if (limitWrites && !READ_METHODS.has(c.req.method)) {
      const { success } = await c.env.WRITE_LIMITER.limit({ key: `user:${identity.sub}` });
      if (!success) {
        throw new OutpostError("RATE_LIMITED", "Too many writes; try again in a minute.", { headers: { "Retry-After": "60" } });
      }
    }
    c.set("identity", identity);
    await next();
  });
}

async function authenticate(
  c: Context<AppEnv>,
  auth: AuthConfig,
  granted: ReadonlyMap<string, Role>,
  options: { wsTicket: boolean; scopedCookie: boolean },
): Promise<Identity> {
  const header = c.req.raw.headers.get("authorization");
  if (header !== null) {
    const match = BEARER.exec(header);
    if (!match) throw invalidToken("malformed Authorization header");
    return verifyBearer(auth, match[1]!, granted);
  }
  const url = new URL(c.req.url);
  const upgrade = c.req.header("upgrade")?.toLowerCase() === "websocket";
  const ticket = url.searchParams.get("ticket");
  if (options.wsTicket && upgrade && ticket) return redeemTicket(c, auth, granted, ticket, url.pathname);
  const scoped = options.scopedCookie ? getCookie(c, SCOPED_COOKIE) : undefined;
  if (scoped) return verifyScoped(auth, granted, scoped, url.pathname);
  throw authRequired();
}

async function verifyBearer(auth: AuthConfig, token: string, granted: ReadonlyMap<string, Role>): Promise<Identity> {
  const key = await tokenKey(token);
  const hit = cachedIdentity(auth, key);
  if (hit) {
    // The signature check is cached; the role is not: a grant removed since must take effect.
    const role = roleFor(auth, hit.email, granted);
    if (!role) throw new OutpostError("FORBIDDEN", "This account is not allowed here.", { detail: "no longer on the access list" });
    return role === hit.role ? hit : { ...hit, role };
  }
  const identity = await verifyUserToken(auth, token, granted);
  rememberIdentity(auth, key, identity);
  return identity;
}

async function redeemTicket(c: Context<AppEnv>, auth: AuthConfig, granted: ReadonlyMap<string, Role>, ticket: string, path: string): Promise<Identity> {
  const payload = await verifyOwn(auth, ticket, "wsTicket");
  if (payload.path !== path) throw invalidToken("ticket bound to another path");
  const first = await accountStub(c.env).consumeOnce(`ticket:${payload.jti}`, (payload.exp as number) * 1000);
  if (!first) throw invalidToken("ticket already used");
  return fromClaims(auth, granted, payload, "session_exp");
}

async function verifyScoped(auth: AuthConfig, granted: ReadonlyMap<string, Role>, token: string, path: string): Promise<Identity> {
  const payload = await verifyOwn(auth, token, "scoped");
  const prefix = payload.prefix;
  if (typeof prefix !== "string" || !(path === prefix || path.startsWith(prefix.endsWith("/") ? prefix : `${prefix}/`))) {
    throw invalidToken("scoped cookie outside its prefix");
  }
  return fromClaims(auth, granted, payload, "exp");
}

/** Identity carried inside one of Outpost's own short tokens; the role is looked up again, never trusted. */
function fromClaims(auth: AuthConfig, granted: ReadonlyMap<string, Role>, payload: Record<string, unknown>, expClaim: string): Identity {
  const email = typeof payload.email === "string" ? payload.email : "";
  const role = roleFor(auth, email, granted);
  if (!role) throw new OutpostError("FORBIDDEN", "This account is not allowed here.");
  const exp = typeof payload[expClaim] === "number" ? (payload[expClaim] as number) : (payload.exp as number);
  return {
    sub: payload.sub as string,
    email,
    role,
    provider: payload.provider === "supabase" ? "supabase" : "outpost",
    deviceId: typeof payload.sid === "string" ? payload.sid : null,
    exp,
  };
}

/** Revoked devices lose access within DEVICE_STATUS_TTL_MS even though their access tokens have not expired. */
export async function assertDeviceActive(c: Context<AppEnv>, auth: AuthConfig, deviceId: string): Promise<void> {
  let revoked = cachedDeviceStatus(auth, deviceId);
  if (revoked === null) {
    const device = await accountStub(c.env).getDevice(deviceId);
    revoked = !device || device.revokedAt !== null;
    rememberDeviceStatus(auth, deviceId, revoked);
  }
  if (revoked) throw invalidToken("device revoked");
}
