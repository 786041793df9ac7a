// Device-code approval from the phone: lookup and decision need a signed-in user and our Origin; wrong codes are capped.
import { describe, expect, it } from "vitest";
import { GUESS_LIMITS } from "../../../durable-objects/account/guess-limits.ts";

const GUESS_LIMIT_PER_USER = GUESS_LIMITS.perUser;
import {
  ALLOWED_ORIGIN,
  call,
  decide,
  expectError,
  expectOAuthError,
  jsonInit,
  mint,
  poll,
  rewindPoll,
  sha256,
  sql,
  startDeviceLogin,
  tokenFor,
} from "./helpers.ts";

const lookup = (userCode: string, token: string, headers: Record<string, string> = ALLOWED_ORIGIN) =>
  call("/auth/device/lookup", jsonInit({ user_code: userCode }, { authorization: `Bearer ${token}`, ...headers }));

describe("POST /auth/device/lookup", () => {
  it("shows the pending request without approving it", async () => {
    const dc = await startDeviceLogin({ hostname: "studio", platform: "darwin", arch: "arm64", client_name: "outpost-cli" });
    const res = await lookup(dc.user_code, await tokenFor("viewer"));
    expect(res.status).toBe(200);
    const { request } = await res.json<{ request: Record<string, unknown> }>();
    expect(request).toMatchObject({ userCode: dc.user_code, hostname: "studio", platform: "darwin", arch: "arm64", clientName: "outpost-cli" });
    expect(JSON.stringify(request)).not.toContain(dc.device_code);
    await expectOAuthError(await poll(dc.device_code), 400, "authorization_pending");
    await rewindPoll(dc.device_code);
    await expectOAuthError(await poll(dc.device_code), 400, "authorization_pending");
  });

  it("accepts the user code in lower case, without the dash, or with spaces", async () => {
    const dc = await startDeviceLogin();
    const token = await tokenFor("owner");
    const plain = dc.user_code.replace("-", "");
    for (const variant of [dc.user_code.toLowerCase(), plain, plain.toLowerCase(), ` ${dc.user_code} `, `${plain.slice(0, 4)} ${plain.slice(4)}`]) {
      const res = await lookup(variant, token);
      expect(res.status, variant).toBe(200);
    }
  });

  it("answers 404 for a well-formed code nobody requested and for malformed codes", async () => {
    const token = await mint({ sub: `outpost:test-${crypto.randomUUID()}` });
    for (const code of ["BBBB-BBBB", "AEIO-UAEI", "BCDF", "12345678"]) await expectError(await lookup(code, token), 404, "NOT_FOUND");
  });

  it("needs a signed-in user and an Origin of ours", async () => {
    const dc = await startDeviceLogin();
    await expectError(await call("/auth/device/lookup", jsonInit({ user_code: dc.user_code }, ALLOWED_ORIGIN)), 401, "AUTH_REQUIRED");
    const token = await tokenFor("owner");
    await expectError(await lookup(dc.user_code, token, {}), 403, "FORBIDDEN_ORIGIN");
    await expectError(await lookup(dc.user_code, token, { origin: "https://evil.example.com" }), 403, "FORBIDDEN_ORIGIN");
    expect((await lookup(dc.user_code, token, { origin: "https://extra.example.com" })).status).toBe(200);
  });
});

describe("POST /auth/device/approve", () => {
  it("needs a signed-in user: no token, or a bad one, changes nothing", async () => {
    const dc = await startDeviceLogin();
    const body = { user_code: dc.user_code, decision: "approve" };
    await expectError(await call("/auth/device/approve", jsonInit(body, ALLOWED_ORIGIN)), 401, "AUTH_REQUIRED");
    const forged = await mint({}, { kid: "nope" });
    await expectError(await call("/auth/device/approve", jsonInit(body, { ...ALLOWED_ORIGIN, authorization: `Bearer ${forged}` })), 401, "AUTH_INVALID");
    await expectOAuthError(await poll(dc.device_code), 400, "authorization_pending");
  });

  it.each([
    ["no Origin", {}],
    ["a foreign Origin", { origin: "https://evil.example.com" }],
    ["the null Origin", { origin: "null" }],
    ["a look-alike Origin", { origin: "https://outpost.example.com.evil.com" }],
    ["an http Origin", { origin: "http://outpost.example.com" }],
  ])("refuses %s with 403 and does not approve", async (_label, headers) => {
    const dc = await startDeviceLogin();
    await expectError(await decide(dc.user_code, "approve", await tokenFor("owner"), headers as Record<string, string>), 403, "FORBIDDEN_ORIGIN");
    await expectOAuthError(await poll(dc.device_code), 400, "authorization_pending");
  });

  it.each([["yes"], ["APPROVE"], ["approved"], [""], [true], [null]])("accepts only approve|deny, not %j", async (decision) => {
    const dc = await startDeviceLogin();
    const res = await call(
      "/auth/device/approve",
      jsonInit({ user_code: dc.user_code, decision }, { ...ALLOWED_ORIGIN, authorization: `Bearer ${await tokenFor("owner")}` }),
    );
    await expectError(res, 400, "BAD_REQUEST");
    await expectOAuthError(await poll(dc.device_code), 400, "authorization_pending");
  });

  it("approves once: a second decision on the same code finds nothing", async () => {
    const dc = await startDeviceLogin();
    const owner = await tokenFor("owner");
    const res = await decide(dc.user_code.toLowerCase().replace("-", ""), "approve", owner);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "approved", request: { userCode: dc.user_code } });
    await expectError(await decide(dc.user_code, "deny", owner), 404, "NOT_FOUND");
    const tokens = await poll(dc.device_code);
    expect(tokens.status).toBe(200);
  });

  it("lets a viewer approve their own CLI, which then acts as that viewer", async () => {
    const dc = await startDeviceLogin();
    expect((await decide(dc.user_code, "approve", await tokenFor("viewer"))).status).toBe(200);
    const { access_token } = await (await poll(dc.device_code)).json<{ access_token: string }>();
    const me = await call("/auth/me", { headers: { authorization: `Bearer ${access_token}` } });
    expect(await me.json()).toMatchObject({ email: "viewer@example.com", role: "viewer" });
  });

  it("does not approve an expired code", async () => {
    const dc = await startDeviceLogin();
    await sql("UPDATE device_codes SET expires_at = ? WHERE device_code_hash = ?", Date.now() - 1, await sha256(dc.device_code));
    await expectError(await decide(dc.user_code, "approve", await tokenFor("owner")), 404, "NOT_FOUND");
  });
});

describe("guessing user codes", () => {
  it(`caps wrong codes at ${GUESS_LIMIT_PER_USER} per user, then refuses even a right one with 429`, async () => {
    const guesser = await mint({ sub: `outpost:guesser-${crypto.randomUUID()}` });
    const dc = await startDeviceLogin();
    for (let i = 0; i < GUESS_LIMIT_PER_USER; i++) {
      await expectError(await lookup(i % 2 ? "BBBB-BBBB" : "ZZZZ-ZZZZ", guesser), 404, "NOT_FOUND");
    }
    const blocked = await lookup(dc.user_code, guesser);
    await expectError(blocked, 429, "RATE_LIMITED");
    expect(Number(blocked.headers.get("retry-after"))).toBeGreaterThan(0);
    await expectError(await decide(dc.user_code, "approve", guesser), 429, "RATE_LIMITED");
    await expectOAuthError(await poll(dc.device_code), 400, "authorization_pending");
    // Another user is not affected.
    expect((await lookup(dc.user_code, await mint({ sub: `outpost:other-${crypto.randomUUID()}` }))).status).toBe(200);
  });

  it("counts wrong decisions as guesses too", async () => {
    const guesser = await mint({ sub: `outpost:guesser-${crypto.randomUUID()}` });
    const dc = await startDeviceLogin();
    for (let i = 0; i < GUESS_LIMIT_PER_USER; i++) await expectError(await decide("BBBB-BBBB", "approve", guesser), 404, "NOT_FOUND");
    await expectError(await decide(dc.user_code, "approve", guesser), 429, "RATE_LIMITED");
  });

  it("does not count right codes", async () => {
    const user = await mint({ sub: `outpost:honest-${crypto.randomUUID()}` });
    const dc = await startDeviceLogin();
    for (let i = 0; i < GUESS_LIMIT_PER_USER + 2; i++) expect((await lookup(dc.user_code, user)).status).toBe(200);
  });
});
