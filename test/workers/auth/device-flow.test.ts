// RFC 8628 device-code login from the CLI's side: the code request, its bad bodies, and every answer of the token endpoint.
import { describe, expect, it } from "vitest";
import { DEVICE_CODE_TTL_S } from "../../../durable-objects/account/device-login.ts";
import {
  bearer,
  call,
  callEnv,
  decide,
  DEVICE_GRANT,
  CLIENT_ID,
  expectOAuthError,
  formInit,
  freshIp,
  jsonInit,
  makeEnv,
  poll,
  rewindPoll,
  sha256,
  sql,
  startDeviceLogin,
  tokenFor,
  type DeviceCodeResponse,
  type TokenResponse,
} from "./helpers.ts";

const USER_CODE = /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/;

describe("POST /auth/device/code", () => {
  it("returns a 256-bit device code, a consonant user code and the verification URIs", async () => {
    const ip = freshIp();
    const dc = await startDeviceLogin({ client_name: "outpost-cli", hostname: "work-laptop" }, { "cf-connecting-ip": ip });
    expect(dc.device_code).toMatch(/^[A-Za-z0-9_-]{43,}$/);
    expect(dc.user_code).toMatch(USER_CODE);
    expect(dc.verification_uri).toBe("https://outpost.example.com/device");
    expect(dc.verification_uri_complete).toBe(`https://outpost.example.com/device#code=${dc.user_code}`);
    expect(dc.expires_in).toBe(DEVICE_CODE_TTL_S);
    expect(dc.expires_in).toBe(600);
    // DEVICE_LOGIN_INTERVAL_SECONDS is unset in the tests: the default.
    expect(dc.interval).toBe(5);
    // Only the hash of the device code is stored.
    const rows = await sql<{ device_code_hash: string; hostname: string }>("SELECT device_code_hash, hostname FROM device_codes WHERE ip = ?", ip);
    expect(rows).toEqual([{ device_code_hash: await sha256(dc.device_code), hostname: "work-laptop" }]);
  });

  it("tells the client the configured polling interval, and holds it to that interval", async () => {
    const workerEnv = { ...makeEnv(), DEVICE_LOGIN_INTERVAL_SECONDS: "2" };
    const res = await callEnv(workerEnv, "/auth/device/code", formInit({ client_id: CLIENT_ID, hostname: "laptop" }));
    const dc = await res.json<DeviceCodeResponse>();
    expect(dc.interval).toBe(2);
    const hash = await sha256(dc.device_code);
    expect((await sql<{ interval_s: number }>("SELECT interval_s FROM device_codes WHERE device_code_hash = ?", hash))[0]!.interval_s).toBe(2);
    // The interval rides in the body's `interval` (and in Retry-After for clients that look there).
    const pending = await poll(dc.device_code, workerEnv);
    expect((await expectOAuthError(pending, 400, "authorization_pending")).interval).toBe(2);
    expect(pending.headers.get("retry-after")).toBe("2");
    await rewindPoll(dc.device_code, 1_000);
    const slow = await poll(dc.device_code, workerEnv);
    expect((await expectOAuthError(slow, 400, "slow_down")).interval).toBe(7);
    expect(slow.headers.get("retry-after")).toBe("7");
  });

  it("refuses a polling interval outside 1 to 60 s as a configuration problem", async () => {
    for (const value of ["0", "61", "2.5", "soon"]) {
      const workerEnv = { ...makeEnv(), DEVICE_LOGIN_INTERVAL_SECONDS: value };
      const res = await callEnv(workerEnv, "/auth/device/code", formInit({ client_id: CLIENT_ID }));
      expect((await expectOAuthError(res, 503, "temporarily_unavailable")).error_description, value).not.toContain(value);
    }
  });

  it("hands out different codes every time", async () => {
    const a = await startDeviceLogin();
    const b = await startDeviceLogin();
    expect(a.device_code).not.toBe(b.device_code);
    expect(a.user_code).not.toBe(b.user_code);
  });

  it("accepts the standard form body with only client_id, and JSON as an extension; the code is bound to the client", async () => {
    const ip = freshIp();
    const form = await call("/auth/device/code", formInit({ client_id: "some-oauth-client" }, { "cf-connecting-ip": ip }));
    expect(form.status).toBe(200);
    expect(form.headers.get("cache-control")).toBe("no-store");
    expect(form.headers.get("pragma")).toBe("no-cache");
    // Without client_name, the approval page shows the client_id.
    expect(await sql("SELECT client_id, client_name FROM device_codes WHERE ip = ?", ip)).toEqual([
      { client_id: "some-oauth-client", client_name: "some-oauth-client" },
    ]);
    expect((await call("/auth/device/code", jsonInit({ client_id: CLIENT_ID }))).status).toBe(200);
  });

  it.each([
    ["no body at all (no client_id)", 400, () => ({ method: "POST" })],
    ["a form without client_id", 400, () => formInit({ hostname: "h" })],
    ["client_id twice", 400, () => ({ ...formInit({}), body: "client_id=a&client_id=b" })],
    ["a client_id with a control character", 400, () => formInit({ client_id: "cli\u0001" })],
    ["an over-long client_id", 400, () => formInit({ client_id: "c".repeat(129) })],
    ["a scope (none are defined)", 400, () => formInit({ client_id: CLIENT_ID, scope: "openid" })],
    ["non-JSON with a JSON content type", 400, () => jsonInit("{not json")],
    ["a JSON array", 400, () => jsonInit([{ client_id: CLIENT_ID }])],
    ["a JSON string", 400, () => jsonInit('"laptop"')],
    ["an over-long hostname", 400, () => jsonInit({ client_id: CLIENT_ID, hostname: "h".repeat(256) })],
    ["a control character in the hostname", 400, () => jsonInit({ client_id: CLIENT_ID, hostname: "lap\ntop" })],
    ["a DEL character in the platform", 400, () => jsonInit({ client_id: CLIENT_ID, platform: "lin\u007fux" })],
    ["a non-string hostname", 400, () => jsonInit({ client_id: CLIENT_ID, hostname: 42 })],
    ["a non-string client_id", 400, () => jsonInit({ client_id: 7 })],
    ["an over-long client name", 400, () => jsonInit({ client_id: CLIENT_ID, client_name: "c".repeat(65) })],
    ["a body over 4096 bytes", 413, () => jsonInit({ client_id: CLIENT_ID, pad: "x".repeat(5000) })],
    ["a form body over 4096 bytes", 413, () => formInit({ client_id: CLIENT_ID, hostname: "x".repeat(5000) })],
    ["plain text", 400, () => ({ method: "POST", headers: { "content-type": "text/plain" }, body: "client_id=x" })],
  ] as const)("refuses %s (%i, invalid_request) and stores nothing", async (_label, status, init) => {
    const ip = freshIp();
    const base = init() as RequestInit;
    const res = await call("/auth/device/code", { ...base, headers: { ...(base.headers as Record<string, string>), "cf-connecting-ip": ip } });
    await expectOAuthError(res, status, _label.startsWith("a scope") ? "invalid_scope" : "invalid_request");
    expect(await sql("SELECT 1 FROM device_codes WHERE ip = ?", ip)).toEqual([]);
  });
});

describe("POST /auth/device/token", () => {
  it("answers authorization_pending, then slow_down with 5 s more for every poll that comes too fast", async () => {
    const dc = await startDeviceLogin();
    const hash = await sha256(dc.device_code);
    await expectOAuthError(await poll(dc.device_code), 400, "authorization_pending");
    await expectOAuthError(await poll(dc.device_code), 400, "slow_down");
    expect((await sql<{ interval_s: number }>("SELECT interval_s FROM device_codes WHERE device_code_hash = ?", hash))[0]!.interval_s).toBe(10);
    await expectOAuthError(await poll(dc.device_code), 400, "slow_down");
    expect((await sql<{ interval_s: number }>("SELECT interval_s FROM device_codes WHERE device_code_hash = ?", hash))[0]!.interval_s).toBe(15);
    // 14 s later is still too fast for a 15 s interval (which grows to 20 s); 21 s later is on time.
    await rewindPoll(dc.device_code, 14_000);
    await expectOAuthError(await poll(dc.device_code), 400, "slow_down");
    expect((await sql<{ interval_s: number }>("SELECT interval_s FROM device_codes WHERE device_code_hash = ?", hash))[0]!.interval_s).toBe(20);
    await rewindPoll(dc.device_code, 21_000);
    await expectOAuthError(await poll(dc.device_code), 400, "authorization_pending");
  });

  it("answers access_denied after the user denies, every time", async () => {
    const dc = await startDeviceLogin();
    expect((await decide(dc.user_code, "deny", await tokenFor("owner"))).status).toBe(200);
    await expectOAuthError(await poll(dc.device_code), 400, "access_denied");
    await rewindPoll(dc.device_code);
    await expectOAuthError(await poll(dc.device_code), 400, "access_denied");
  });

  it("answers expired_token once the code has expired, even if it was approved", async () => {
    const dc = await startDeviceLogin();
    await expectOAuthError(await poll(dc.device_code), 400, "authorization_pending");
    expect((await decide(dc.user_code, "approve", await tokenFor("owner"))).status).toBe(200);
    await sql("UPDATE device_codes SET expires_at = ?, last_poll_at = NULL WHERE device_code_hash = ?", Date.now() - 1, await sha256(dc.device_code));
    await expectOAuthError(await poll(dc.device_code), 400, "expired_token");
  });

  it("issues tokens once after approval; the device code then stops working", async () => {
    const dc = await startDeviceLogin({ hostname: "ci-box", platform: "linux", arch: "arm64" });
    await expectOAuthError(await poll(dc.device_code), 400, "authorization_pending");
    expect((await decide(dc.user_code, "approve", await tokenFor("member"))).status).toBe(200);
    await rewindPoll(dc.device_code);
    const ok = await poll(dc.device_code);
    expect(ok.status).toBe(200);
    expect(ok.headers.get("cache-control")).toBe("no-store");
    const tokens = await ok.json<TokenResponse>();
    expect(tokens.token_type).toBe("Bearer");
    expect(tokens.expires_in).toBeGreaterThanOrEqual(895);
    expect(tokens.expires_in).toBeLessThanOrEqual(900);
    expect(tokens.refresh_token).toMatch(/^opr_[A-Za-z0-9_-]{43}$/);
    expect(tokens.device_id).toMatch(/^dev_/);
    const me = await call("/auth/me", bearer(tokens.access_token));
    expect(await me.json()).toMatchObject({ email: "member@example.com", role: "member", deviceId: tokens.device_id });
    await rewindPoll(dc.device_code);
    await expectOAuthError(await poll(dc.device_code), 400, "invalid_grant");
    await expectOAuthError(await poll(dc.device_code), 400, "invalid_grant");
  });

  it("answers invalid_grant for an unknown device code", async () => {
    await expectOAuthError(await poll("A".repeat(43)), 400, "invalid_grant");
  });

  it("also serves the same grants at /auth/token", async () => {
    const dc = await startDeviceLogin();
    const res = await call("/auth/token", formInit({ grant_type: DEVICE_GRANT, device_code: dc.device_code, client_id: CLIENT_ID }));
    await expectOAuthError(res, 400, "authorization_pending");
  });

  it("gives a denied or pending code nothing even when polled through a fresh config", async () => {
    const dc = await startDeviceLogin();
    for (let i = 0; i < 3; i++) {
      await rewindPoll(dc.device_code);
      await expectOAuthError(await poll(dc.device_code, makeEnv()), 400, "authorization_pending");
    }
  });
});
