// The OAuth endpoints, in OAuth's wire format: device authorization (RFC 8628 §3.1), the token endpoint (RFC 6749 §3.2:
// the device grant and refresh_token) and token revocation (RFC 7009). Mounted under /auth by auth.ts.
import { Hono, type Context } from "hono";
import { accountStub, type Grant } from "../../durable-objects/account/index.ts";
import { stringField } from "../../shared/fields.ts";
import { DEVICE_CODE_GRANT, type DeviceCodeResponse, type Role, type TokenResponse } from "../../shared/identity.ts";
import { HOSTNAME_MAX } from "../../shared/limits.ts";
import { roleFor, type AuthConfig } from "../../shared/settings/index.ts";
import { grantedRoles } from "../auth/grants.ts";
import { clientIp, limitByIp, limitByToken } from "../auth/guards.ts";
import { placeOf } from "../auth/network.ts";
import { rememberDeviceStatus } from "../auth/identity-cache.ts";
import { authConfigOf } from "../auth/middleware.ts";
import { assertPublicClient, clientIdOf, OAuthError, oauthEndpoint, postOnly, refuseScope, requiredParam } from "../auth/oauth.ts";
import { mintOwn, verifyOwn } from "../auth/tokens.ts";
import { readOAuthParams } from "../body.ts";
import type { AppEnv } from "../types.ts";

const SMALL_BODY = 4096;
const OTHER_METHODS = ["GET", "PUT", "PATCH", "DELETE"];

export const oauthRoutes = new Hono<AppEnv>();

/** An access token for the grant's device, with its refresh token; `refusal` is the error when the user lost access. */
export async function issueTokens(
  auth: AuthConfig,
  granted: ReadonlyMap<string, Role>,
  grant: Grant,
  refusal: "access_denied" | "invalid_grant" = "access_denied",
): Promise<TokenResponse> {
  if (!roleFor(auth, grant.device.email, granted)) throw new OAuthError(refusal, "This account is no longer allowed here.");
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

oauthRoutes.post(
  "/device/code",
  oauthEndpoint(async (c) => {
    const auth = authConfigOf(c);
    await limitByIp(c, "device-code");
    const p = await readOAuthParams(c, SMALL_BODY);
    assertPublicClient(c, p);
    // RFC 8628 §3.1: a public client names itself with client_id.
    const clientId = clientIdOf(p, true);
    refuseScope(p);
    const place = placeOf(c);
    const res = await accountStub(c.env).createDeviceCode(
      {
        clientId,
        // client_name is Outpost's extension: what the approval page shows; the client_id otherwise.
        clientName: oauthString(p, "client_name", 64, clientId.slice(0, 64)),
        hostname: oauthString(p, "hostname", HOSTNAME_MAX),
        platform: oauthString(p, "platform", 32),
        arch: oauthString(p, "arch", 32),
        ip: clientIp(c),
        location: [place.city, place.country].filter(Boolean).join(", "),
        ...place,
      },
      auth.deviceLoginIntervalSeconds,
    );
    const userCode = `${res.userCode.slice(0, 4)}-${res.userCode.slice(4)}`;
    return c.json({
      device_code: res.deviceCode,
      user_code: userCode,
      verification_uri: `${auth.issuer}/device`,
      // The code rides in the fragment: it never reaches a server log.
      verification_uri_complete: `${auth.issuer}/device#code=${userCode}`,
      expires_in: res.expiresIn,
      interval: res.interval,
    } satisfies DeviceCodeResponse);
  }),
);

/** An optional extension parameter, checked as the JSON routes check strings (printable, bounded). */
function oauthString(p: Record<string, string>, name: string, max: number, fallback = ""): string {
  try {
    return stringField(p, name, max, fallback) || fallback;
  } catch {
    throw new OAuthError("invalid_request", `The ${name} parameter must be at most ${max} printable characters.`);
  }
}

const tokenEndpoint = oauthEndpoint(async (c) => {
  const auth = authConfigOf(c);
  await limitByIp(c, "token");
  const p = await readOAuthParams(c, SMALL_BODY);
  assertPublicClient(c, p);
  const grantType = requiredParam(p, "grant_type", 128);
  if (grantType === DEVICE_CODE_GRANT) return deviceGrant(c, auth, p);
  if (grantType === "refresh_token") return refreshGrant(c, auth, p);
  throw new OAuthError("unsupported_grant_type", `Only ${DEVICE_CODE_GRANT} and refresh_token are supported.`);
});

/** RFC 8628 §3.4-3.5: the device access token request. */
async function deviceGrant(c: Context<AppEnv>, auth: AuthConfig, p: Record<string, string>): Promise<Response> {
  const deviceCode = requiredParam(p, "device_code", 128);
  const clientId = clientIdOf(p, true);
  const result = await accountStub(c.env).pollDeviceCode(deviceCode, clientId);
  switch (result.status) {
    case "approved":
      return c.json(await issueTokens(auth, await grantedRoles(c.env), result.grant));
    case "authorization_pending":
      // The interval rides in the body (and, for clients that look there, in Retry-After).
      throw new OAuthError("authorization_pending", "Waiting for approval on the phone.", {
        interval: result.interval,
        headers: { "Retry-After": String(result.interval) },
      });
    case "slow_down":
      throw new OAuthError("slow_down", `Polling too fast; the interval is now ${result.interval} s.`, {
        interval: result.interval,
        headers: { "Retry-After": String(result.interval) },
      });
    case "access_denied":
      throw new OAuthError("access_denied", "The login was denied.");
    case "expired_token":
      throw new OAuthError("expired_token", "The code expired; start the login again.");
    case "wrong_client":
      throw new OAuthError("invalid_grant", "The device code was issued to another client.", { detail: "device code: client_id mismatch" });
    default:
      throw new OAuthError("invalid_grant", "The device code is not valid.");
  }
}

/** RFC 6749 §6: refreshing, with rotation (see RefreshTokens.rotate for the grace window). */
async function refreshGrant(c: Context<AppEnv>, auth: AuthConfig, p: Record<string, string>): Promise<Response> {
  const token = requiredParam(p, "refresh_token", 256);
  const clientId = clientIdOf(p, false);
  refuseScope(p);
  await limitByToken(c, "refresh", token);
  const result = await accountStub(c.env).refresh(token, clientId);
  if (!result.ok) throw new OAuthError("invalid_grant", "The refresh token is not valid; sign in again.", { detail: `refresh ${result.reason}` });
  return c.json(await issueTokens(auth, await grantedRoles(c.env), result.grant, "invalid_grant"));
}

oauthRoutes.post("/device/token", tokenEndpoint);
oauthRoutes.post("/token", tokenEndpoint);

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * RFC 7009: revokes a refresh token (its device, and with it every token of that device) or an access token of a
 * device (the same). 200 for a token that is unknown, expired or revoked already: the client could do nothing about
 * it (§2.2). token_type_hint is not needed, since the two kinds differ in form, and is ignored (§2.1 allows it).
 */
oauthRoutes.post(
  "/revoke",
  oauthEndpoint(async (c) => {
    const auth = authConfigOf(c);
    await limitByIp(c, "revoke");
    const p = await readOAuthParams(c, SMALL_BODY);
    assertPublicClient(c, p);
    const token = requiredParam(p, "token", SMALL_BODY);
    clientIdOf(p, false);
    await limitByToken(c, "revoke", token);
    const stub = accountStub(c.env);
    if (token.startsWith("opr_")) {
      const deviceId = await stub.revokeByRefresh(token);
      if (deviceId) rememberDeviceStatus(auth, deviceId, true);
    } else if (JWT_SHAPE.test(token)) {
      const payload = await verifyOwn(auth, token, "access").catch(() => null);
      if (payload) {
        if (typeof payload.sid !== "string") {
          throw new OAuthError("unsupported_token_type", "This access token belongs to no device, so it cannot be revoked; it expires on its own.");
        }
        await stub.revokeDevice(payload.sid);
        rememberDeviceStatus(auth, payload.sid, true);
      }
    }
    return c.body(null, 200);
  }),
);

for (const path of ["/device/code", "/device/token", "/token", "/revoke"]) oauthRoutes.on(OTHER_METHODS, path, postOnly);
