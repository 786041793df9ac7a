// A standard OAuth library (openid-client) signs in against the real Worker in workerd: discovery, the device grant
// through pending, slow_down, approval, denial and an unknown code, the refresh grant with rotation, and revocation.
// (expired_token needs the clock moved: test/workers/auth/openid-client.test.ts.)
import net from "node:net";
import * as client from "openid-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer } from "../support/http-client.ts";
import { OWNER } from "../support/identity.ts";
import { startStack, type Stack } from "../support/stack.ts";

const CLIENT_ID = "openid-client-test";

let stack: Stack;
let ownerToken: string;
let config: client.Configuration;

/** Every token-endpoint exchange openid-client makes: the `error` it got (or "tokens"). */
const tokenAnswers: string[] = [];
/** Set by a test to poll once more, out of turn, just before openid-client's next token request. */
let pollOutOfTurn: string | null = null;

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** openid-client's fetch, recording what the token endpoint answers. */
const recordingFetch: client.CustomFetch = async (url, options) => {
  const isToken = new URL(url).pathname === "/auth/token";
  if (isToken && pollOutOfTurn) {
    const deviceCode = pollOutOfTurn;
    pollOutOfTurn = null;
    const body = new URLSearchParams({ grant_type: "urn:ietf:params:oauth:grant-type:device_code", device_code: deviceCode, client_id: CLIENT_ID });
    await (await fetch(url, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body })).body?.cancel();
  }
  const res = await fetch(url, options as RequestInit);
  if (isToken) {
    const text = await res.clone().text();
    tokenAnswers.push(res.ok ? "tokens" : ((JSON.parse(text) as { error: string }).error ?? `HTTP ${res.status}`));
  }
  return res;
};

beforeAll(async () => {
  const port = await freePort();
  // The issuer must be the very URL the library discovers from (RFC 8414 §3.3).
  stack = await startStack({ port, vars: { PUBLIC_URL: `http://127.0.0.1:${port}` } });
  ownerToken = await stack.mintToken(OWNER);
  config = await client.discovery(new URL(stack.edgeUrl), CLIENT_ID, undefined, client.None(), {
    execute: [client.allowInsecureRequests],
    [client.customFetch]: recordingFetch,
  });
}, 90_000);

afterAll(async () => {
  await stack?.stop();
});

/** The phone's side, as the web app does it: look the code up, then decide, signed in, from a page of ours. */
async function decide(userCode: string, decision: "approve" | "deny"): Promise<void> {
  const headers = { ...bearer(ownerToken), "content-type": "application/json", origin: stack.edgeUrl };
  const lookup = await fetch(`${stack.edgeUrl}/auth/device/lookup`, { method: "POST", headers, body: JSON.stringify({ user_code: userCode }) });
  expect(lookup.status, await lookup.clone().text()).toBe(200);
  await lookup.body?.cancel();
  const res = await fetch(`${stack.edgeUrl}/auth/device/approve`, { method: "POST", headers, body: JSON.stringify({ user_code: userCode, decision }) });
  expect(res.status, await res.clone().text()).toBe(200);
  await res.body?.cancel();
}

async function waitForAnswer(answer: string, from: number): Promise<void> {
  while (!tokenAnswers.slice(from).includes(answer)) await new Promise((r) => setTimeout(r, 50));
}

async function me(accessToken: string): Promise<Response> {
  return fetch(`${stack.edgeUrl}/auth/me`, { headers: bearer(accessToken) });
}

/** A device login approved on the phone, driven by openid-client. */
async function signIn(): Promise<client.TokenEndpointResponse> {
  const device = await client.initiateDeviceAuthorization(config, {});
  const from = tokenAnswers.length;
  const tokens = client.pollDeviceAuthorizationGrant(config, device);
  await waitForAnswer("authorization_pending", from);
  await decide(device.user_code, "approve");
  return tokens;
}

describe("openid-client against Outpost", () => {
  it("discovers the metadata at both well-known paths, with the issuer it was asked for", async () => {
    const meta = config.serverMetadata();
    expect(meta).toMatchObject({
      issuer: stack.edgeUrl,
      device_authorization_endpoint: `${stack.edgeUrl}/auth/device/code`,
      token_endpoint: `${stack.edgeUrl}/auth/token`,
      revocation_endpoint: `${stack.edgeUrl}/auth/revoke`,
      token_endpoint_auth_methods_supported: ["none"],
    });
    const oauth2 = await client.discovery(new URL(stack.edgeUrl), CLIENT_ID, undefined, client.None(), {
      execute: [client.allowInsecureRequests],
      algorithm: "oauth2",
    });
    expect(oauth2.serverMetadata()).toEqual(meta);
  });

  it("device grant: pending until approved on the phone, then tokens that work", { timeout: 60_000 }, async () => {
    const device = await client.initiateDeviceAuthorization(config, {});
    expect(device).toMatchObject({ interval: 1, expires_in: 600, verification_uri: `${stack.edgeUrl}/device` });
    const from = tokenAnswers.length;
    const polling = client.pollDeviceAuthorizationGrant(config, device);
    await waitForAnswer("authorization_pending", from);
    await decide(device.user_code, "approve");
    const tokens = await polling;
    expect(tokens.token_type).toBe("bearer");
    expect(tokens.expiresIn()).toBeGreaterThan(800);
    expect(tokens.refresh_token).toMatch(/^opr_/);
    expect(tokens.scope).toBeUndefined();
    const who = await me(tokens.access_token);
    expect(who.status).toBe(200);
    expect(await who.json()).toMatchObject({ email: OWNER, deviceId: tokens.device_id });
    expect(tokenAnswers.slice(from).at(-1)).toBe("tokens");
  });

  it("device grant: slow_down makes the library wait 5 s more, and the edge finds it on time after that", { timeout: 60_000 }, async () => {
    const device = await client.initiateDeviceAuthorization(config, {});
    const from = tokenAnswers.length;
    // Another poll just before the library's first one: the library's comes too soon.
    pollOutOfTurn = device.device_code;
    const polling = client.pollDeviceAuthorizationGrant(config, device);
    await waitForAnswer("slow_down", from);
    await decide(device.user_code, "approve");
    const tokens = await polling;
    expect((await me(tokens.access_token)).status).toBe(200);
    const answers = tokenAnswers.slice(from);
    expect(answers[0]).toBe("slow_down");
    // After slow_down it waited interval + 5 s: the edge saw no poll too soon again.
    expect(answers.slice(1)).not.toContain("slow_down");
    expect(answers.at(-1)).toBe("tokens");
  });

  it("device grant: denied on the phone is access_denied", { timeout: 60_000 }, async () => {
    const device = await client.initiateDeviceAuthorization(config, {});
    const from = tokenAnswers.length;
    const polling = client.pollDeviceAuthorizationGrant(config, device).catch((err: unknown) => err);
    await waitForAnswer("authorization_pending", from);
    await decide(device.user_code, "deny");
    const failure = await polling;
    expect(failure).toBeInstanceOf(client.ResponseBodyError);
    expect((failure as client.ResponseBodyError).error).toBe("access_denied");
  });

  it("device grant: an unknown device code is invalid_grant", async () => {
    const unknown = { device_code: "A".repeat(43), user_code: "BCDF-GHJK", verification_uri: `${stack.edgeUrl}/device`, expires_in: 60, interval: 1 };
    const failure = await client.pollDeviceAuthorizationGrant(config, unknown).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(client.ResponseBodyError);
    expect((failure as client.ResponseBodyError).error).toBe("invalid_grant");
  });

  it("refresh grant: rotates; one retry of the old token within 30 s gets the same pair; a second is a reuse", { timeout: 60_000 }, async () => {
    const first = await signIn();
    const second = await client.refreshTokenGrant(config, first.refresh_token!);
    expect(second.refresh_token).toMatch(/^opr_/);
    expect(second.refresh_token).not.toBe(first.refresh_token);
    expect(second.access_token).not.toBe(first.access_token);
    expect((await me(second.access_token)).status).toBe(200);
    // A client that lost the answer retries with the old token and gets the same new refresh token.
    const retried = await client.refreshTokenGrant(config, first.refresh_token!);
    expect(retried.refresh_token).toBe(second.refresh_token);
    expect((await me(retried.access_token)).status).toBe(200);
    // Once more is a replay: the device is revoked, the new token with it.
    const reuse = await client.refreshTokenGrant(config, first.refresh_token!).catch((err: unknown) => err);
    expect((reuse as client.ResponseBodyError).error).toBe("invalid_grant");
    const after = await client.refreshTokenGrant(config, second.refresh_token!).catch((err: unknown) => err);
    expect((after as client.ResponseBodyError).error).toBe("invalid_grant");
  });

  it("revocation: a refresh token (its device goes with it), an access token, and garbage all answer 200", { timeout: 60_000 }, async () => {
    const tokens = await signIn();
    await client.tokenRevocation(config, tokens.refresh_token!, { token_type_hint: "refresh_token" });
    const refused = await client.refreshTokenGrant(config, tokens.refresh_token!).catch((err: unknown) => err);
    expect((refused as client.ResponseBodyError).error).toBe("invalid_grant");
    expect((await me(tokens.access_token)).status).toBe(401);
    // Revoking again, or something that was never a token, is still 200.
    await client.tokenRevocation(config, tokens.refresh_token!);
    await client.tokenRevocation(config, "not-a-token", { token_type_hint: "access_token" });

    const other = await signIn();
    await client.tokenRevocation(config, other.access_token, { token_type_hint: "access_token" });
    const gone = await client.refreshTokenGrant(config, other.refresh_token!).catch((err: unknown) => err);
    expect((gone as client.ResponseBodyError).error).toBe("invalid_grant");
  });
});
