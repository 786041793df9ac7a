// Refresh tokens: rotated on every use, reuse revokes the device, idle expiry, stored only as hashes, logout.
import { afterEach, describe, expect, it, vi } from "vitest";
import { REFRESH_IDLE_TTL_MS } from "../../../durable-objects/account/refresh-tokens.ts";
import { DEVICE_STATUS_TTL_MS } from "../../../worker/auth/identity-cache.ts";
import {
  bearer,
  call,
  callEnv,
  deviceLogin,
  expectError,
  expectInvalid,
  expectOAuthError,
  formInit,
  makeEnv,
  refresh,
  sha256,
  sql,
  type TokenResponse,
} from "./helpers.ts";

afterEach(() => vi.useRealTimers());

const me = (token: string, env = makeEnv()) => callEnv(env, "/auth/me", bearer(token));

describe("refresh_token grant", () => {
  it("rotates the refresh token on every use and issues a fresh access token for the same device", async () => {
    const first = await deviceLogin("member");
    const res = await refresh(first.refresh_token);
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const second = await res.json<TokenResponse>();
    expect(second.refresh_token).toMatch(/^opr_/);
    expect(second.refresh_token).not.toBe(first.refresh_token);
    expect(second.access_token).not.toBe(first.access_token);
    expect(second.device_id).toBe(first.device_id);
    expect(second.expires_in).toBeGreaterThan(890);
    const who = await me(second.access_token);
    expect(await who.json()).toMatchObject({ email: "member@example.com", deviceId: first.device_id });
    const third = await (await refresh(second.refresh_token)).json<TokenResponse>();
    expect(third.device_id).toBe(first.device_id);
  });

  it("treats a reused refresh token as theft: the whole device is revoked", async () => {
    const first = await deviceLogin("owner");
    const stable = makeEnv();
    expect((await me(first.access_token, stable)).status).toBe(200);
    const second = await (await refresh(first.refresh_token)).json<TokenResponse>();
    // The rotated token's successor is in use, so presenting the old one is no lost answer: it is a replay,
    const third = await (await refresh(second.refresh_token)).json<TokenResponse>();
    await expectOAuthError(await refresh(first.refresh_token), 400, "invalid_grant");
    // ...and it revoked the device: the current refresh token fails too,
    await expectOAuthError(await refresh(third.refresh_token), 400, "invalid_grant");
    // and so do its access tokens, at once for a fresh config,
    const log = await expectInvalid(await me(third.access_token), third.access_token);
    expect(log.detail).toBe("device revoked");
    await expectInvalid(await me(first.access_token), first.access_token);
    // and within the device-status cache TTL for a config that had it cached.
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + DEVICE_STATUS_TTL_MS + 1);
    await expectInvalid(await me(first.access_token, stable), first.access_token);
    const [device] = await sql<{ revoked_reason: string }>("SELECT revoked_reason FROM devices WHERE id = ?", first.device_id);
    expect(device!.revoked_reason).toBe("refresh_token_reuse");
  });

  it("expires after 30 idle days", async () => {
    const tokens = await deviceLogin("member");
    const hash = await sha256(tokens.refresh_token);
    const [row] = await sql<{ created_at: number; expires_at: number }>("SELECT created_at, expires_at FROM refresh_tokens WHERE hash = ?", hash);
    expect(row!.expires_at - row!.created_at).toBe(REFRESH_IDLE_TTL_MS);
    expect(REFRESH_IDLE_TTL_MS).toBe(30 * 86_400_000);
    await sql("UPDATE refresh_tokens SET expires_at = ? WHERE hash = ?", Date.now() - 1, hash);
    await expectOAuthError(await refresh(tokens.refresh_token), 400, "invalid_grant");
  });

  it("slides the idle window forward on every rotation", async () => {
    const tokens = await deviceLogin("member");
    await sql("UPDATE refresh_tokens SET expires_at = ? WHERE hash = ?", Date.now() + 60_000, await sha256(tokens.refresh_token));
    const next = await (await refresh(tokens.refresh_token)).json<TokenResponse>();
    const [row] = await sql<{ expires_at: number }>("SELECT expires_at FROM refresh_tokens WHERE hash = ?", await sha256(next.refresh_token));
    expect(row!.expires_at).toBeGreaterThan(Date.now() + REFRESH_IDLE_TTL_MS - 60_000);
  });

  it("stores refresh tokens only as SHA-256 hashes", async () => {
    const tokens = await deviceLogin("viewer");
    const rows = await sql<{ hash: string; device_id: string }>("SELECT hash, device_id FROM refresh_tokens WHERE device_id = ?", tokens.device_id);
    expect(rows).toEqual([{ hash: await sha256(tokens.refresh_token), device_id: tokens.device_id }]);
    const dump = JSON.stringify(await sql("SELECT * FROM refresh_tokens"));
    expect(dump).not.toContain(tokens.refresh_token);
    expect(dump).not.toContain(tokens.refresh_token.slice(4));
  });

  it.each([
    ["an unknown token", "opr_" + "A".repeat(43)],
    ["an access token", ""],
    ["too long a value", "x".repeat(257)],
  ])("refuses %s", async (label, value) => {
    const token = label === "an access token" ? (await deviceLogin()).access_token : value;
    const res = await refresh(token);
    expect(res.status).toBe(400);
  });

  it("stops working once the user is removed from the access list", async () => {
    const tokens = await deviceLogin("member");
    // RFC 6749 §5.2: a refresh grant that no longer holds is invalid_grant (access_denied is the device grant's).
    await expectOAuthError(await refresh(tokens.refresh_token, makeEnv({ MEMBER_EMAILS: "" })), 400, "invalid_grant");
  });
});

describe("POST /auth/logout", () => {
  it("revokes the device of the refresh token: refresh and access tokens stop working", async () => {
    const tokens = await deviceLogin("owner");
    const res = await call("/auth/logout", formInit({ refresh_token: tokens.refresh_token }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ revoked: true });
    expect(res.headers.get("set-cookie")).toMatch(/__Host-outpost_refresh=;.*Max-Age=0/);
    await expectOAuthError(await refresh(tokens.refresh_token), 400, "invalid_grant");
    await expectInvalid(await me(tokens.access_token), tokens.access_token);
    const [device] = await sql<{ revoked_at: number | null; revoked_reason: string }>(
      "SELECT revoked_at, revoked_reason FROM devices WHERE id = ?",
      tokens.device_id,
    );
    expect(device!.revoked_at).not.toBeNull();
    expect(device!.revoked_reason).toBe("logout");
  });

  it("changes nothing for an unknown token and needs one", async () => {
    const res = await call("/auth/logout", formInit({ refresh_token: "opr_unknown" }));
    expect(await res.json()).toEqual({ revoked: false });
    await expectError(await call("/auth/logout", { method: "POST" }), 400, "BAD_REQUEST");
  });
});
