// The /auth routes: the phone's side of the device login, browser sessions, logout, enrollment and WebSocket tickets.
// The OAuth endpoints (device code, token, revocation) are in oauth.ts; scoped access is in scoped.ts.
import { Hono, type Context } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import { readFields } from "../body.ts";
import { accountStub } from "../../durable-objects/account/index.ts";
import { roleFor, type AuthConfig } from "../../shared/settings/index.ts";
import { grantedRoles } from "../auth/grants.ts";
import { rememberDeviceStatus } from "../auth/identity-cache.ts";
import { authConfigOf, requireAuth } from "../auth/middleware.ts";
import { invalidToken, mintOwn, TOKEN_KINDS, verifyOwn } from "../auth/tokens.ts";
import { OutpostError } from "../../shared/errors.ts";
import { requiredString, stringField } from "../../shared/fields.ts";
import type { AppEnv } from "../types.ts";
import type { BrowserSession, LoginLookup, Me, WsTicket } from "../../shared/identity.ts";
import type { Grant, LookupResult } from "../../durable-objects/account/index.ts";
import { assertSameSiteOrigin, clientNetwork, limitByIp, limitByToken } from "../auth/guards.ts";
import { placeOf } from "../auth/network.ts";
import { issueTokens, oauthRoutes } from "./oauth.ts";

// __Host-: Secure, Path=/ and no Domain, so no sibling host of the zone can plant or shadow it (cookie tossing).
const REFRESH_COOKIE = "__Host-outpost_refresh";
const CLEAR_REFRESH = { path: "/", maxAge: 0, httpOnly: true, secure: true, sameSite: "Strict" } as const;
const SMALL_BODY = 4096;

export const authRoutes = new Hono<AppEnv>();

// /device/code, /device/token, /token and /revoke speak OAuth's wire format; every other route here keeps ErrorBody.
authRoutes.route("/", oauthRoutes);

authRoutes.post("/device/lookup", requireAuth({ selfService: true }), async (c) => {
  assertSameSiteOrigin(c);
  const f = await readFields(c, SMALL_BODY);
  const source = stringField(f, "source", 16, "typed");
  if (source !== "typed" && source !== "link") throw new OutpostError("BAD_REQUEST", '"source" must be "typed" or "link".');
  const result = await accountStub(c.env).lookupUserCode(requiredString(f, "user_code", 32), c.get("identity").sub, clientNetwork(c), source);
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
    clientNetwork(c),
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

/** Signs a browser (its cookie) or a client (`refresh_token` in the body) out; RFC 7009's /auth/revoke is the standard one. */
authRoutes.post("/logout", async (c) => {
  const auth = authConfigOf(c);
  await limitByIp(c, "logout");
  const f = await readFields(c, SMALL_BODY, { form: true });
  const fromBody = stringField(f, "refresh_token", 256);
  // A cookie is sent by the browser on its own: only a page of ours may use it to sign out.
  if (!fromBody && getCookie(c, REFRESH_COOKIE)) assertSameSiteOrigin(c);
  const token = fromBody || getCookie(c, REFRESH_COOKIE) || "";
  if (!token) throw new OutpostError("BAD_REQUEST", '"refresh_token" is required.');
  await limitByToken(c, "logout", token);
  const deviceId = await accountStub(c.env).revokeByRefresh(token);
  if (deviceId) rememberDeviceStatus(auth, deviceId, true);
  setCookie(c, REFRESH_COOKIE, "", CLEAR_REFRESH);
  return c.json({ revoked: deviceId !== null });
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
  // Anyone can call this with any cookie; these keep the account object from answering them all.
  await limitByIp(c, "refresh");
  const token = getCookie(c, REFRESH_COOKIE);
  if (!token) throw new OutpostError("AUTH_REQUIRED", "Sign in to continue.");
  await limitByToken(c, "refresh", token);
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
