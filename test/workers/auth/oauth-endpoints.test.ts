// Every bad request to the OAuth endpoints gets RFC 6749 §5.2's answer (or RFC 7009's 200) and changes nothing stored.
import { describe, expect, it } from "vitest";
import {
  call,
  CLIENT_ID,
  decide,
  DEVICE_GRANT,
  deviceLogin,
  expectOAuthError,
  formInit,
  jsonInit,
  rewindPoll,
  sha256,
  sql,
  startDeviceLogin,
  tokenFor,
  type TokenResponse,
} from "./helpers.ts";

/** Everything the account keeps about logins and tokens, to show a refused request changed none of it. */
async function snapshot(): Promise<string> {
  const tables = ["device_codes", "devices", "refresh_tokens", "refresh_grace"];
  const dump: Record<string, unknown> = {};
  for (const t of tables) dump[t] = await sql(`SELECT * FROM ${t} ORDER BY 1`);
  return JSON.stringify(dump);
}

/** A device code, approved, whose next poll is on time: any refused request must leave it redeemable. */
async function approvedCode(): Promise<string> {
  const dc = await startDeviceLogin();
  expect((await decide(dc.user_code, "approve", await tokenFor("owner"))).status).toBe(200);
  await rewindPoll(dc.device_code);
  return dc.device_code;
}

const raw = (body: string, type = "application/x-www-form-urlencoded", headers: Record<string, string> = {}): RequestInit => ({
  method: "POST",
  headers: { "content-type": type, ...headers },
  body,
});

describe("the token endpoint refuses bad requests in OAuth's shape, changing nothing", () => {
  it.each<[string, (code: string, refresh: string) => RequestInit, number, string]>([
    ["no grant_type", (code) => formInit({ device_code: code, client_id: CLIENT_ID }), 400, "invalid_request"],
    ["an empty body", () => raw(""), 400, "invalid_request"],
    ["an unsupported grant_type", () => formInit({ grant_type: "password", username: "a", password: "b" }), 400, "unsupported_grant_type"],
    ["authorization_code", () => formInit({ grant_type: "authorization_code", code: "x" }), 400, "unsupported_grant_type"],
    ["client_credentials", () => formInit({ grant_type: "client_credentials" }), 400, "unsupported_grant_type"],
    ["a device grant without device_code", () => formInit({ grant_type: DEVICE_GRANT, client_id: CLIENT_ID }), 400, "invalid_request"],
    ["a device grant without client_id", (code) => formInit({ grant_type: DEVICE_GRANT, device_code: code }), 400, "invalid_request"],
    ["a device grant for another client", (code) => formInit({ grant_type: DEVICE_GRANT, device_code: code, client_id: "someone-else" }), 400, "invalid_grant"],
    [
      "a device_code that is too long",
      () => formInit({ grant_type: DEVICE_GRANT, device_code: "x".repeat(129), client_id: CLIENT_ID }),
      400,
      "invalid_request",
    ],
    [
      "device_code twice",
      (code) => raw(`grant_type=${encodeURIComponent(DEVICE_GRANT)}&client_id=${CLIENT_ID}&device_code=${code}&device_code=${code}`),
      400,
      "invalid_request",
    ],
    [
      "grant_type twice",
      (code) => raw(`grant_type=refresh_token&grant_type=${encodeURIComponent(DEVICE_GRANT)}&client_id=${CLIENT_ID}&device_code=${code}`),
      400,
      "invalid_request",
    ],
    ["a refresh grant without refresh_token", () => formInit({ grant_type: "refresh_token" }), 400, "invalid_request"],
    [
      "a refresh grant for another client",
      (_c, rt) => formInit({ grant_type: "refresh_token", refresh_token: rt, client_id: "someone-else" }),
      400,
      "invalid_grant",
    ],
    ["a refresh grant asking for a scope", (_c, rt) => formInit({ grant_type: "refresh_token", refresh_token: rt, scope: "admin" }), 400, "invalid_scope"],
    ["a refresh_token that is too long", () => formInit({ grant_type: "refresh_token", refresh_token: `opr_${"x".repeat(300)}` }), 400, "invalid_request"],
    ["plain text", (code) => raw(`grant_type=${DEVICE_GRANT}&device_code=${code}`, "text/plain"), 400, "invalid_request"],
    ["multipart", () => raw("--x\r\n\r\n--x--", "multipart/form-data; boundary=x"), 400, "invalid_request"],
    ["JSON that is not an object", () => jsonInit("[1,2]"), 400, "invalid_request"],
    ["broken JSON", () => jsonInit("{"), 400, "invalid_request"],
    ["JSON with a non-string parameter", (code) => jsonInit({ grant_type: DEVICE_GRANT, device_code: code, client_id: 5 }), 400, "invalid_request"],
    [
      "a body over 4096 bytes",
      (code) => formInit({ grant_type: DEVICE_GRANT, device_code: code, client_id: CLIENT_ID, pad: "x".repeat(5000) }),
      413,
      "invalid_request",
    ],
    [
      "a client secret (no client authentication exists)",
      (code) => formInit({ grant_type: DEVICE_GRANT, device_code: code, client_id: CLIENT_ID, client_secret: "s" }),
      401,
      "invalid_client",
    ],
  ])("%s", async (_label, init, status, error) => {
    const code = await approvedCode();
    const { refresh_token } = await deviceLogin("member");
    const before = await snapshot();
    for (const path of ["/auth/token", "/auth/device/token"]) {
      await expectOAuthError(await call(path, init(code, refresh_token)), status, error);
    }
    expect(await snapshot()).toBe(before);
    // The approved code still redeems, the refresh token still rotates: nothing was spent.
    expect((await call("/auth/token", formInit({ grant_type: DEVICE_GRANT, device_code: code, client_id: CLIENT_ID }))).status).toBe(200);
    expect((await call("/auth/token", formInit({ grant_type: "refresh_token", refresh_token }))).status).toBe(200);
  });

  it("answers a client that authenticates with the Authorization header 401 invalid_client, with that scheme's challenge", async () => {
    const code = await approvedCode();
    const before = await snapshot();
    const basic = await call(
      "/auth/token",
      formInit({ grant_type: DEVICE_GRANT, device_code: code }, { authorization: `Basic ${btoa(`${CLIENT_ID}:secret`)}` }),
    );
    expect(basic.headers.get("www-authenticate")).toBe('Basic realm="outpost"');
    await expectOAuthError(basic, 401, "invalid_client");
    const bearer = await call("/auth/token", formInit({ grant_type: DEVICE_GRANT, device_code: code }, { authorization: "Bearer a.b.c" }));
    expect(bearer.headers.get("www-authenticate")).toBe('Bearer realm="outpost"');
    await expectOAuthError(bearer, 401, "invalid_client");
    expect(await snapshot()).toBe(before);
  });

  it("accepts JSON as an extension and ignores parameters it does not know (RFC 6749 §3.1)", async () => {
    const code = await approvedCode();
    const res = await call("/auth/token", jsonInit({ grant_type: DEVICE_GRANT, device_code: code, client_id: CLIENT_ID, nonce: "x" }));
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("pragma")).toBe("no-cache");
    const body = await res.json<TokenResponse>();
    expect(Object.keys(body).sort()).toEqual(["access_token", "device_id", "expires_in", "refresh_token", "token_type"]);
  });

  it("treats a parameter without a value as absent (RFC 6749 §3.1)", async () => {
    const code = await approvedCode();
    const res = await call(
      "/auth/token",
      raw(`grant_type=${encodeURIComponent(DEVICE_GRANT)}&device_code=${code}&client_id=${CLIENT_ID}&scope=&client_secret=`),
    );
    expect(res.status).toBe(200);
  });

  it("answers GET, PUT, PATCH and DELETE with 405, Allow: POST, in OAuth's shape, on every OAuth endpoint", async () => {
    for (const path of ["/auth/token", "/auth/device/token", "/auth/device/code", "/auth/revoke"]) {
      for (const method of ["GET", "PUT", "PATCH", "DELETE"]) {
        const res = await call(path, { method });
        expect(res.headers.get("allow"), `${method} ${path}`).toBe("POST");
        await expectOAuthError(res, 405, "invalid_request");
      }
    }
  });

  it("answers 503 temporarily_unavailable when the gateway is not configured, naming no setting", async () => {
    const res = await call("/auth/token", formInit({ grant_type: "refresh_token", refresh_token: "opr_x" }), { PUBLIC_URL: "" });
    const body = await expectOAuthError(res, 503, "temporarily_unavailable");
    expect(body.error_description).not.toMatch(/PUBLIC_URL/);
  });

  it("never echoes a token in an error", async () => {
    const { refresh_token } = await deviceLogin("member");
    const res = await call("/auth/token", formInit({ grant_type: "refresh_token", refresh_token, client_id: "wrong" }));
    const text = await res.clone().text();
    expect(text).not.toContain(refresh_token);
    await expectOAuthError(res, 400, "invalid_grant");
  });
});

describe("POST /auth/revoke (RFC 7009)", () => {
  const revoke = (fields: Record<string, string>, headers: Record<string, string> = {}) => call("/auth/revoke", formInit(fields, headers));

  it("revokes a refresh token's device: 200 with no body, and the device's tokens stop working", async () => {
    const tokens = await deviceLogin("member");
    const res = await revoke({ token: tokens.refresh_token, token_type_hint: "refresh_token", client_id: CLIENT_ID });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("");
    expect(res.headers.get("cache-control")).toBe("no-store");
    await expectOAuthError(await call("/auth/token", formInit({ grant_type: "refresh_token", refresh_token: tokens.refresh_token })), 400, "invalid_grant");
    expect((await call("/auth/me", { headers: { authorization: `Bearer ${tokens.access_token}` } })).status).toBe(401);
    const [device] = await sql<{ revoked_at: number | null; revoked_reason: string }>(
      "SELECT revoked_at, revoked_reason FROM devices WHERE id = ?",
      tokens.device_id,
    );
    expect(device).toMatchObject({ revoked_at: expect.any(Number), revoked_reason: "logout" });
  });

  it("revokes an access token's device, whatever the hint says", async () => {
    const tokens = await deviceLogin("member");
    expect((await revoke({ token: tokens.access_token, token_type_hint: "refresh_token" })).status).toBe(200);
    await expectOAuthError(await call("/auth/token", formInit({ grant_type: "refresh_token", refresh_token: tokens.refresh_token })), 400, "invalid_grant");
  });

  it.each([
    ["an unknown refresh token", `opr_${"A".repeat(43)}`],
    ["garbage", "not-a-token"],
    ["a JWT-shaped forgery", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.sig"],
    ["a 4000-character string", "x".repeat(4000)],
  ])("answers 200 for %s and changes nothing", async (_label, token) => {
    const before = await snapshot();
    for (const hint of [undefined, "refresh_token", "access_token", "something_else"]) {
      const res = await revoke(hint ? { token, token_type_hint: hint } : { token });
      expect(res.status).toBe(200);
      await res.body?.cancel();
    }
    expect(await snapshot()).toBe(before);
  });

  it("answers 200 again for a token already revoked", async () => {
    const { refresh_token } = await deviceLogin("member");
    expect((await revoke({ token: refresh_token })).status).toBe(200);
    const before = await snapshot();
    expect((await revoke({ token: refresh_token })).status).toBe(200);
    expect(await snapshot()).toBe(before);
  });

  it("refuses an access token of no device as unsupported_token_type (it cannot be revoked), changing nothing", async () => {
    const before = await snapshot();
    await expectOAuthError(await revoke({ token: await tokenFor("owner") }), 400, "unsupported_token_type");
    expect(await snapshot()).toBe(before);
  });

  it.each<[string, () => RequestInit, number, string]>([
    ["no token", () => formInit({ token_type_hint: "refresh_token" }), 400, "invalid_request"],
    ["an empty body", () => raw(""), 400, "invalid_request"],
    ["token twice", () => raw("token=a&token=b"), 400, "invalid_request"],
    ["plain text", () => raw("token=a", "text/plain"), 400, "invalid_request"],
    ["a body over 4096 bytes", () => formInit({ token: "x".repeat(5000) }), 413, "invalid_request"],
    ["a client secret", () => formInit({ token: "opr_x", client_id: CLIENT_ID, client_secret: "s" }), 401, "invalid_client"],
    ["a malformed client_id", () => formInit({ token: "opr_x", client_id: "\u0007" }), 400, "invalid_request"],
  ])("refuses %s, changing nothing", async (_label, init, status, error) => {
    const { refresh_token } = await deviceLogin("member");
    const before = await snapshot();
    await expectOAuthError(await call("/auth/revoke", init()), status, error);
    expect(await snapshot()).toBe(before);
    expect((await call("/auth/token", formInit({ grant_type: "refresh_token", refresh_token }))).status).toBe(200);
  });

  it("stores nothing about a revoked refresh token in the clear", async () => {
    const { refresh_token, device_id } = await deviceLogin("member");
    await revoke({ token: refresh_token });
    expect(await sql("SELECT * FROM refresh_tokens WHERE device_id = ?", device_id)).toEqual([]);
    expect(await sql("SELECT * FROM refresh_tokens WHERE hash = ?", await sha256(refresh_token))).toEqual([]);
  });
});
