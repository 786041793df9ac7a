// The /auth routes: device-code login (RFC 8628), token refresh, enrollment and WebSocket tickets (scoped access: scoped.ts).
import { Hono, type Context } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import { readFields } from "../body.ts";
import { accountStub } from "../../durable-objects/account/index.ts";
import type { Role } from "../../shared/identity.ts";
import { roleFor, type AuthConfig } from "../../shared/settings/index.ts";
import { grantedRoles } from "../auth/grants.ts";
import { authConfigOf, requireAuth } from "../auth/middleware.ts";
import { invalidToken, mintOwn, TOKEN_KINDS, verifyOwn } from "../auth/tokens.ts";
import { OutpostError, type ErrorCode } from "../../shared/errors.ts";
import { requiredString, stringField } from "../../shared/fields.ts";
import type { AppEnv } from "../types.ts";
import type { BrowserSession, DeviceCodeResponse, LoginLookup, Me, TokenResponse, WsTicket } from "../../shared/identity.ts";
import { HOSTNAME_MAX } from "../../shared/limits.ts";
import type { Grant, LookupResult } from "../../durable-objects/account/index.ts";
import { assertSameSiteOrigin, clientIp, limitByIp } from "../auth/guards.ts";

// __Host-: Secure, Path=/ and no Domain, so no sibling host of the zone can plant or shadow it (cookie tossing).
const REFRESH_COOKIE = "__Host-outpost_refresh";
const CLEAR_REFRESH = { path: "/", maxAge: 0, httpOnly: true, secure: true, sameSite: "Strict" } as const;
const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";
const SMALL_BODY = 4096;

export const authRoutes = new Hono<AppEnv>();

function oauthError(code: ErrorCode, message: string, retryAfterSeconds?: number): OutpostError {
  // The polling interval rides in Retry-After, so clients need not parse the message.
  const headers = retryAfterSeconds ? { "Retry-After": String(retryAfterSeconds) } : undefined;
  return new OutpostError(code, message, headers ? { headers } : {});
}

async function issueTokens(auth: AuthConfig, granted: ReadonlyMap<string, Role>, grant: Grant): Promise<TokenResponse> {
  if (!roleFor(auth, grant.device.email, granted)) throw oauthError("access_denied", "This account is no longer allowed here.");
  const { token, exp } = await mintOwn(auth, "access", {
    sub: grant.device.sub,
    email: grant.device.email,
    sid: grant.device.id,
  });
  return {
    access_token: token,
    token_type: "Bearer",
    expires_in: exp - Math.floor(Date.now() / 1000),
    refresh_token: grant.refreshToken,
    device_id: grant.device.id,
  };
}

authRoutes.post("/device/code", async (c) => {
  const auth = authConfigOf(c);
  await limitByIp(c, "device-code");
  const f = await readFields(c, SMALL_BODY, { form: true });
  const place = placeOf(c);
  const res = await accountStub(c.env).createDeviceCode(
    {
      clientName: stringField(f, "client_name", 64, "outpost-cli"),
      hostname: stringField(f, "hostname", HOSTNAME_MAX),
      platform: stringField(f, "platform", 32),
      arch: stringField(f, "arch", 32),
      ip: clientIp(c),
      location: [place.city, place.country].filter(Boolean).join(", "),
      ...place,
    },
    auth.deviceLoginIntervalSeconds,
  );
  const userCode = `${res.userCode.slice(0, 4)}-${res.userCode.slice(4)}`;
  c.header("Cache-Control", "no-store");
  return c.json({
    device_code: res.deviceCode,
    user_code: userCode,
    verification_uri: `${auth.issuer}/device`,
    // The code rides in the fragment: it never reaches a server log.
    verification_uri_complete: `${auth.issuer}/device#code=${userCode}`,
    expires_in: res.expiresIn,
    interval: res.interval,
  } satisfies DeviceCodeResponse);
});

async function tokenEndpoint(c: Context<AppEnv>) {
  const auth = authConfigOf(c);
  await limitByIp(c, "token");
  const f = await readFields(c, SMALL_BODY, { form: true });
  const grantType = requiredString(f, "grant_type", 128);
  c.header("Cache-Control", "no-store");
  if (grantType === DEVICE_GRANT) {
    const result = await accountStub(c.env).pollDeviceCode(requiredString(f, "device_code", 128));
    switch (result.status) {
      case "approved":
        return c.json(await issueTokens(auth, await grantedRoles(c.env), result.grant));
      case "authorization_pending":
        throw oauthError("authorization_pending", "Waiting for approval on the phone.", result.interval);
      case "slow_down":
        throw oauthError("slow_down", `Polling too fast; wait ${result.interval} s between polls.`, result.interval);
      case "access_denied":
        throw oauthError("access_denied", "The login was denied.");
      case "expired_token":
        throw oauthError("expired_token", "The code expired; start the login again.");
      default:
        throw oauthError("invalid_grant", "The device code is not valid.");
    }
  }
  if (grantType === "refresh_token") {
    const result = await accountStub(c.env).refresh(requiredString(f, "refresh_token", 256));
    if (!result.ok) throw oauthError("invalid_grant", "The refresh token is not valid; sign in again.");
    return c.json(await issueTokens(auth, await grantedRoles(c.env), result.grant));
  }
  throw oauthError("unsupported_grant_type", "Unsupported grant_type.");
}
authRoutes.post("/device/token", tokenEndpoint);
authRoutes.post("/token", tokenEndpoint);

authRoutes.post("/device/lookup", requireAuth({ selfService: true }), async (c) => {
  assertSameSiteOrigin(c);
  const f = await readFields(c, SMALL_BODY);
  const source = stringField(f, "source", 16, "typed");
  if (source !== "typed" && source !== "link") throw new OutpostError("BAD_REQUEST", '"source" must be "typed" or "link".');
  const result = await accountStub(c.env).lookupUserCode(requiredString(f, "user_code", 32), c.get("identity").sub, source);
  if (!result.ok) throw userCodeError(result.reason);
  // RFC 8628 §5.4: the phone sees where the computer's request came from, and is warned when that is elsewhere.
  const approverCountry = placeOf(c).country;
  const known = (country: string) => country !== "" && country !== "XX";
  return c.json({
    request: result.request,
    confirmation: result.confirmation,
    approverCountry,
    countryMismatch: known(result.request.country) && known(approverCountry) && result.request.country !== approverCountry,
  } satisfies LoginLookup);
});

authRoutes.post("/device/approve", requireAuth({ selfService: true }), async (c) => {
  assertSameSiteOrigin(c);
  const f = await readFields(c, SMALL_BODY);
  const decision = requiredString(f, "decision", 16);
  if (decision !== "approve" && decision !== "deny") {
    throw new OutpostError("BAD_REQUEST", '"decision" must be "approve" or "deny".');
  }
  const identity = c.get("identity");
  const result = await accountStub(c.env).decideUserCode(
    requiredString(f, "user_code", 32),
    { sub: identity.sub, email: identity.email },
    decision === "approve",
    stringField(f, "confirm", 32),
  );
  if (!result.ok) throw userCodeError(result.reason);
  return c.json({ status: decision === "approve" ? "approved" : "denied", request: result.request });
});

function userCodeError(reason: Extract<LookupResult, { ok: false }>["reason"]): OutpostError {
  switch (reason) {
    case "rate_limited":
      return new OutpostError("RATE_LIMITED", "Too many wrong codes; wait a few minutes.", { headers: { "Retry-After": "900" } });
    case "confirmation_required":
      return new OutpostError(
        "CONFIRMATION_REQUIRED",
        'This code was opened from a link: to approve it, send "confirm", the last four letters of the code your computer shows.',
      );
    case "confirmation_mismatch":
      return new OutpostError(
        "CONFIRMATION_MISMATCH",
        "Those are not the last four letters of this login's code. If your computer shows another code, this link did not come from it: deny it.",
      );
    default:
      return new OutpostError("NOT_FOUND", "No pending login has this code; check it and try again.");
  }
}

/** Where Cloudflare places the request's network; all empty where there is no `cf` (local runs without one). */
function placeOf(c: Context<AppEnv>): { country: string; city: string; asn: number | null; asOrganization: string } {
  const cf = (c.req.raw as { cf?: Partial<Pick<IncomingRequestCfProperties, "country" | "city" | "asn" | "asOrganization">> }).cf;
  const text = (value: unknown, max: number) => (typeof value === "string" ? value.slice(0, max) : "");
  return {
    country: text(cf?.country, 2).toUpperCase(),
    city: text(cf?.city, 64),
    asn: typeof cf?.asn === "number" && Number.isInteger(cf.asn) ? cf.asn : null,
    asOrganization: text(cf?.asOrganization, 128),
  };
}

authRoutes.post("/logout", async (c) => {
  authConfigOf(c);
  await limitByIp(c, "logout");
  const f = await readFields(c, SMALL_BODY, { form: true });
  const fromBody = stringField(f, "refresh_token", 256);
  // A cookie is sent by the browser on its own: only a page of ours may use it to sign out.
  if (!fromBody && getCookie(c, REFRESH_COOKIE)) assertSameSiteOrigin(c);
  const token = fromBody || getCookie(c, REFRESH_COOKIE) || "";
  if (!token) throw new OutpostError("BAD_REQUEST", '"refresh_token" is required.');
  const revoked = await accountStub(c.env).revokeByRefresh(token);
  setCookie(c, REFRESH_COOKIE, "", CLEAR_REFRESH);
  return c.json({ revoked });
});

authRoutes.post("/enroll", async (c) => {
  const auth = authConfigOf(c);
  await limitByIp(c, "enroll");
  const header = c.req.header("authorization") ?? "";
  const token = /^Bearer (\S+)$/.exec(header)?.[1];
  if (!token) throw invalidToken("no enrollment token");
  const payload = await verifyOwn(auth, token, "enrollment");
  const email = typeof payload.email === "string" ? payload.email : "";
  if (!roleFor(auth, email, await grantedRoles(c.env))) throw new OutpostError("FORBIDDEN", "This account is not allowed here.");
  const ua = c.req.header("user-agent") ?? "";
  const platform = /iPhone|iPad/.test(ua)
    ? "ios"
    : /Android/.test(ua)
      ? "android"
      : /Mac/.test(ua)
        ? "macos"
        : /Windows/.test(ua)
          ? "windows"
          : /Linux/.test(ua)
            ? "linux"
            : "";
  const grant = await accountStub(c.env).enroll(payload.jti as string, (payload.exp as number) * 1000, {
    sub: payload.sub as string,
    email,
    name: "Browser",
    platform,
  });
  if (!grant) throw invalidToken("enrollment link already used");
  return browserSession(c, auth, grant);
});

authRoutes.post("/refresh", async (c) => {
  const auth = authConfigOf(c);
  assertSameSiteOrigin(c);
  const token = getCookie(c, REFRESH_COOKIE);
  if (!token) throw new OutpostError("AUTH_REQUIRED", "Sign in to continue.");
  const result = await accountStub(c.env).refresh(token);
  if (!result.ok) {
    setCookie(c, REFRESH_COOKIE, "", CLEAR_REFRESH);
    throw invalidToken(`refresh ${result.reason}`);
  }
  return browserSession(c, auth, result.grant);
});

/** Browsers keep the refresh token only in an HttpOnly cookie; the access token stays in memory. */
async function browserSession(c: Context<AppEnv>, auth: AuthConfig, grant: Grant) {
  const granted = await grantedRoles(c.env);
  const tokens = await issueTokens(auth, granted, grant);
  // Path=/ as __Host- requires; the edge never forwards it (worker/proxy/headers.ts) and proxied pages run sandboxed.
  setCookie(c, REFRESH_COOKIE, tokens.refresh_token, {
    path: "/",
    httpOnly: true,
    secure: true,
    sameSite: "Strict",
    maxAge: 30 * 24 * 60 * 60,
  });
  c.header("Cache-Control", "no-store");
  return c.json({
    access_token: tokens.access_token,
    token_type: tokens.token_type,
    expires_in: tokens.expires_in,
    device_id: tokens.device_id,
    email: grant.device.email,
    role: roleFor(auth, grant.device.email, granted)!,
  } satisfies BrowserSession);
}

authRoutes.get("/me", requireAuth(), (c) => {
  const { sub, email, role, provider, deviceId, exp } = c.get("identity");
  c.header("Cache-Control", "no-store");
  return c.json({ sub, email, role, provider, deviceId, expiresAt: exp } satisfies Me);
});

authRoutes.post("/ws-ticket", requireAuth({ selfService: true }), async (c) => {
  const auth = authConfigOf(c);
  const f = await readFields(c, SMALL_BODY);
  const path = requiredString(f, "path", 512);
  if (!/^\/[A-Za-z0-9._~\-/]*$/.test(path) || path.includes("..")) {
    throw new OutpostError("BAD_REQUEST", '"path" must be an absolute path without a query.');
  }
  const identity = c.get("identity");
  const { token } = await mintOwn(auth, "wsTicket", {
    sub: identity.sub,
    email: identity.email,
    path,
    provider: identity.provider,
    // An open socket lives no longer than the credential that opened it.
    session_exp: identity.exp,
    ...(identity.deviceId ? { sid: identity.deviceId } : {}),
  });
  c.header("Cache-Control", "no-store");
  return c.json({ ticket: token, expires_in: TOKEN_KINDS.wsTicket.ttl } satisfies WsTicket);
});
