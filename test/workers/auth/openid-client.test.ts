// openid-client, a standard OAuth library, against the Worker inside workerd: the answers that need time to pass
// (an expired device code) are reached here by moving the clock; test/node/identity-oauth-client.test.ts does the rest.
import * as client from "openid-client";
import { afterEach, describe, expect, it, vi } from "vitest";
import { DEVICE_CODE_TTL_S } from "../../../durable-objects/account/device-login.ts";
import { BASE, callEnv, makeEnv, type TestEnv } from "./helpers.ts";

afterEach(() => vi.useRealTimers());

/** openid-client's requests go to the Worker's fetch handler, not the network. */
async function configFor(workerEnv: TestEnv): Promise<client.Configuration> {
  const fetchWorker: client.CustomFetch = (url, options) =>
    callEnv(workerEnv, url, { method: options.method, headers: options.headers, body: options.body, redirect: options.redirect });
  return client.discovery(new URL(BASE), "openid-client-test", undefined, client.None(), { [client.customFetch]: fetchWorker, algorithm: "oauth2" });
}

describe("openid-client in workerd", () => {
  it("discovers the server from RFC 8414 metadata", async () => {
    const config = await configFor(makeEnv());
    expect(config.serverMetadata()).toMatchObject({
      issuer: BASE,
      token_endpoint: `${BASE}/auth/token`,
      device_authorization_endpoint: `${BASE}/auth/device/code`,
      revocation_endpoint: `${BASE}/auth/revoke`,
    });
  });

  it("gets expired_token once the device code has expired while it polls", async () => {
    const workerEnv = makeEnv({ DEVICE_LOGIN_INTERVAL_SECONDS: "1" });
    const config = await configFor(workerEnv);
    const device = await client.initiateDeviceAuthorization(config, {});
    expect(device.expires_in).toBe(DEVICE_CODE_TTL_S);
    // Only Date is faked: openid-client still waits its one real second, and the Worker sees the code as expired.
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + DEVICE_CODE_TTL_S * 1000 + 1_000);
    const failure = await client.pollDeviceAuthorizationGrant(config, device, undefined, { signal: AbortSignal.timeout(20_000) }).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(client.ResponseBodyError);
    expect((failure as client.ResponseBodyError).error).toBe("expired_token");
    expect((failure as client.ResponseBodyError).status).toBe(400);
  });
});
