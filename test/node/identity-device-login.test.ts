// Device login (RFC 8628) end to end over HTTP: code, owner approval, polling, proxying, refresh rotation, revocation.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { outpostSubject } from "../../shared/enrollment.ts";
import { bearer } from "../support/http-client.ts";
import { OWNER } from "../support/identity.ts";
import { startStack, type Stack } from "../support/stack.ts";
import { verifyAssertion } from "../support/upstream.ts";

/** The web app's own origin (PUBLIC_URL): approvals must come from a page of ours. */
const APP_ORIGIN = "http://localhost:8787";
const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";
const CLIENT_ID = "outpost-cli";

/** The token endpoint answers errors in RFC 6749 §5.2's shape. */
interface OAuthErrorBody {
  error: string;
  error_description?: string;
  interval?: number;
}
interface ErrorBody {
  error: { code: string; message: string; requestId: string };
}
interface DeviceCode {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete: string;
  expires_in: number;
  interval: number;
}
interface Tokens {
  access_token: string;
  token_type: string;
  expires_in: number;
  refresh_token: string;
  device_id: string;
}
interface Device {
  id: string;
  kind: string;
  hostname: string;
  email: string;
  revokedAt: number | null;
}

let stack: Stack;
let ownerToken: string;

beforeAll(async () => {
  stack = await startStack();
  ownerToken = await stack.mintToken(OWNER);
});

afterAll(async () => {
  await stack?.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A form POST, as an OAuth client (the CLI) sends it. */
function postForm(path: string, fields: Record<string, string>): Promise<Response> {
  return fetch(`${stack.edgeUrl}${path}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(fields).toString(),
  });
}

/** A JSON POST from the web app, signed in as the owner. */
function postAsOwner(path: string, body: Record<string, string>): Promise<Response> {
  return fetch(`${stack.edgeUrl}${path}`, {
    method: "POST",
    headers: { ...bearer(ownerToken), "content-type": "application/json", Origin: APP_ORIGIN },
    body: JSON.stringify(body),
  });
}

const poll = (deviceCode: string) => postForm("/auth/device/token", { grant_type: DEVICE_GRANT, device_code: deviceCode, client_id: CLIENT_ID });
const refresh = (refreshToken: string) => postForm("/auth/device/token", { grant_type: "refresh_token", refresh_token: refreshToken, client_id: CLIENT_ID });

async function expectOAuthError(res: Response, code: string) {
  expect(res.status).toBe(400);
  expect(res.headers.get("cache-control")).toBe("no-store");
  const body = (await res.json()) as OAuthErrorBody;
  expect(body).toMatchObject({ error: code, error_description: expect.any(String) });
}

async function startLogin(): Promise<DeviceCode> {
  const res = await postForm("/auth/device/code", { client_id: CLIENT_ID, client_name: "outpost-cli", hostname: "test-host", platform: "linux", arch: "x64" });
  expect(res.status).toBe(200);
  expect(res.headers.get("cache-control")).toBe("no-store");
  const code = (await res.json()) as DeviceCode;
  expect(code.user_code).toMatch(/^[A-Z0-9]{4}-[A-Z0-9]{4}$/);
  expect(code.verification_uri).toBe(`${APP_ORIGIN}/device`);
  expect(code.verification_uri_complete).toBe(`${APP_ORIGIN}/device#code=${code.user_code}`);
  expect(code.interval).toBeGreaterThan(0);
  expect(code.expires_in).toBeGreaterThan(code.interval);
  return code;
}

/** Polls as RFC 8628 asks: never faster than `interval`, slowing down when told to, until tokens or an error. */
async function pollUntilDone(code: DeviceCode, deadlineMs = 30_000): Promise<Response> {
  let interval = code.interval;
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    await sleep(interval * 1000 + 300);
    const res = await poll(code.device_code);
    if (res.status !== 400) return res;
    const body = (await res.clone().json()) as OAuthErrorBody;
    if (body.error === "slow_down") interval = body.interval ?? interval + 5;
    else if (body.error !== "authorization_pending") return res;
  }
  throw new Error("the device login did not finish in time");
}

async function echoWith(accessToken: string, path: string): Promise<Response> {
  return fetch(`${stack.edgeUrl}/api/echo/${path}`, { headers: bearer(accessToken) });
}

describe("device login", () => {
  it("code → owner approval → tokens that proxy → refresh rotates → owner revokes → refused", { timeout: 120_000 }, async () => {
    const code = await startLogin();

    // Before approval the CLI is told to keep waiting, and how long to wait.
    const pending = await poll(code.device_code);
    expect(pending.headers.get("retry-after")).toBe(String(code.interval));
    expect(((await pending.clone().json()) as OAuthErrorBody).interval).toBe(code.interval);
    await expectOAuthError(pending, "authorization_pending");

    // The owner, signed in to the web app, looks the code up and approves it.
    const lookup = await postAsOwner("/auth/device/lookup", { user_code: code.user_code });
    expect(lookup.status).toBe(200);
    expect(((await lookup.json()) as { request: Record<string, unknown> }).request).toMatchObject({
      userCode: code.user_code,
      clientName: "outpost-cli",
      hostname: "test-host",
      platform: "linux",
      arch: "x64",
    });
    const approve = await postAsOwner("/auth/device/approve", { user_code: code.user_code, decision: "approve" });
    expect(approve.status).toBe(200);
    expect(await approve.json()).toMatchObject({ status: "approved" });

    const issued = await pollUntilDone(code);
    expect(issued.status).toBe(200);
    expect(issued.headers.get("cache-control")).toBe("no-store");
    const first = (await issued.json()) as Tokens;
    expect(first).toMatchObject({ token_type: "Bearer", device_id: expect.stringMatching(/^dev_/) });
    expect(first.expires_in).toBeGreaterThan(0);
    expect(first.expires_in).toBeLessThanOrEqual(15 * 60);

    // The device code was used up.
    await expectOAuthError(await poll(code.device_code), "invalid_grant");

    // The access token proxies, as the owner who approved it; the origin sees an assertion, not the token.
    const echo = await echoWith(first.access_token, "from-device?n=1");
    expect(echo.status).toBe(200);
    const echoed = (await echo.json()) as { headers: Record<string, string> };
    expect(echoed.headers).not.toHaveProperty("authorization");
    const claims = await verifyAssertion(stack.edgeUrl, echoed.headers["outpost-assertion"], { method: "GET", target: "/api/echo/from-device?n=1" });
    expect(claims).toMatchObject({ sub: outpostSubject(OWNER), email: OWNER, role: "owner" });

    const me = await fetch(`${stack.edgeUrl}/auth/me`, { headers: bearer(first.access_token) });
    expect(await me.json()).toMatchObject({ email: OWNER, role: "owner", deviceId: first.device_id });

    const list = await fetch(`${stack.edgeUrl}/api/devices`, { headers: bearer(ownerToken) });
    const { devices } = (await list.json()) as { devices: Device[] };
    expect(devices.find((d) => d.id === first.device_id)).toMatchObject({ kind: "cli", hostname: "test-host", email: OWNER, revokedAt: null });

    // Refresh rotates: a new refresh token, a new access token, the same device.
    const rotated = await refresh(first.refresh_token);
    expect(rotated.status).toBe(200);
    const second = (await rotated.json()) as Tokens;
    expect(second.device_id).toBe(first.device_id);
    expect(second.refresh_token).not.toBe(first.refresh_token);
    expect(second.access_token).not.toBe(first.access_token);
    expect((await echoWith(second.access_token, "after-refresh")).status).toBe(200);

    // The owner revokes the device from the web app.
    const revoke = await fetch(`${stack.edgeUrl}/api/devices/${first.device_id}`, {
      method: "DELETE",
      headers: { ...bearer(ownerToken), Origin: APP_ORIGIN },
    });
    expect(revoke.status).toBe(200);
    expect(((await revoke.json()) as { device: Device }).device.revokedAt).toEqual(expect.any(Number));

    // Its unexpired access tokens stop working within the device-status cache time (30 s), bounded here at 60 s.
    const revokedAt = Date.now();
    let refused: Response | null = null;
    while (Date.now() - revokedAt < 60_000) {
      const res = await echoWith(second.access_token, "after-revoke");
      if (res.status === 401) {
        refused = res;
        break;
      }
      expect(res.status).toBe(200);
      await res.body?.cancel();
      await sleep(1_000);
    }
    expect(refused, "the revoked device's access token was still accepted after 60 s").not.toBeNull();
    expect(((await refused!.json()) as ErrorBody).error.code).toBe("AUTH_INVALID");
    expect((await echoWith(first.access_token, "after-revoke")).status).toBe(401);

    // And it cannot refresh its way back in.
    await expectOAuthError(await refresh(second.refresh_token), "invalid_grant");
    // The owner's own session is untouched.
    expect((await echoWith(ownerToken, "owner-still-in")).status).toBe(200);
  });

  it("presenting a rotated refresh token after its successor was used revokes the device (token theft)", { timeout: 60_000 }, async () => {
    const code = await startLogin();
    await postAsOwner("/auth/device/approve", { user_code: code.user_code, decision: "approve" }).then((r) => expect(r.status).toBe(200));
    // Approved before the first poll: no pending round; the first poll already respects the interval.
    const issued = await pollUntilDone(code);
    expect(issued.status).toBe(200);
    const first = (await issued.json()) as Tokens;

    const rotated = await refresh(first.refresh_token);
    expect(rotated.status).toBe(200);
    const second = (await rotated.json()) as Tokens;
    const third = (await (await refresh(second.refresh_token)).json()) as Tokens;

    // The first token's successor is in use: this is no client retrying a lost answer, it is a replay.
    await expectOAuthError(await refresh(first.refresh_token), "invalid_grant");
    // The reuse revoked the whole device: the newest refresh token is dead too.
    await expectOAuthError(await refresh(third.refresh_token), "invalid_grant");
    const list = await fetch(`${stack.edgeUrl}/api/devices`, { headers: bearer(ownerToken) });
    const { devices } = (await list.json()) as { devices: Device[] };
    expect(devices.find((d) => d.id === first.device_id)?.revokedAt).toEqual(expect.any(Number));
  });

  it("a denied login gets access_denied and no tokens", { timeout: 60_000 }, async () => {
    const code = await startLogin();
    const deny = await postAsOwner("/auth/device/approve", { user_code: code.user_code, decision: "deny" });
    expect(deny.status).toBe(200);
    expect(await deny.json()).toMatchObject({ status: "denied" });
    await expectOAuthError(await pollUntilDone(code), "access_denied");
  });

  it("approving needs a signed-in user and a page of ours", async () => {
    const code = await startLogin();
    const anonymous = await fetch(`${stack.edgeUrl}/auth/device/approve`, {
      method: "POST",
      headers: { "content-type": "application/json", Origin: APP_ORIGIN },
      body: JSON.stringify({ user_code: code.user_code, decision: "approve" }),
    });
    expect(anonymous.status).toBe(401);
    await anonymous.body?.cancel();

    const foreign = await fetch(`${stack.edgeUrl}/auth/device/approve`, {
      method: "POST",
      headers: { ...bearer(ownerToken), "content-type": "application/json", Origin: "https://evil.example.com" },
      body: JSON.stringify({ user_code: code.user_code, decision: "approve" }),
    });
    expect(foreign.status).toBe(403);
    expect(((await foreign.json()) as ErrorBody).error.code).toBe("FORBIDDEN_ORIGIN");
    // Neither attempt approved anything.
    await expectOAuthError(await poll(code.device_code), "authorization_pending");
  });
});
