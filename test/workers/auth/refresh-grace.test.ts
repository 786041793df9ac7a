// The refresh grace window: one retry of a rotated token within 30 s gets the same successor; anything else is a reuse.
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { REFRESH_GRACE_MS, seal, unseal } from "../../../durable-objects/account/refresh-grace.ts";
import { bearer, call, deviceLogin, expectOAuthError, refresh, sha256, sql, type TokenResponse } from "./helpers.ts";

afterEach(() => vi.useRealTimers());

const rotate = async (token: string): Promise<TokenResponse> => {
  const res = await refresh(token);
  expect(res.status, await res.clone().text()).toBe(200);
  return res.json<TokenResponse>();
};

async function revokedReason(deviceId: string): Promise<string | null> {
  const [row] = await sql<{ revoked_reason: string | null }>("SELECT revoked_reason FROM devices WHERE id = ?", deviceId);
  return row!.revoked_reason;
}

describe("a rotated refresh token presented again", () => {
  it("within 30 s, once: the same new refresh token and a working access token for the same device", async () => {
    const first = await deviceLogin("member");
    const second = await rotate(first.refresh_token);
    const retry = await rotate(first.refresh_token);
    expect(retry.refresh_token).toBe(second.refresh_token);
    expect(retry.device_id).toBe(first.device_id);
    expect(retry.token_type).toBe("Bearer");
    const me = await call("/auth/me", bearer(retry.access_token));
    expect(await me.json()).toMatchObject({ email: "member@example.com", deviceId: first.device_id });
    // The successor carries on as usual.
    const third = await rotate(second.refresh_token);
    expect(third.refresh_token).not.toBe(second.refresh_token);
    expect(await revokedReason(first.device_id)).toBeNull();
  });

  it("a second time: the reuse revokes the device, successor included", async () => {
    const first = await deviceLogin("member");
    const second = await rotate(first.refresh_token);
    await rotate(first.refresh_token);
    await expectOAuthError(await refresh(first.refresh_token), 400, "invalid_grant");
    await expectOAuthError(await refresh(second.refresh_token), 400, "invalid_grant");
    expect(await revokedReason(first.device_id)).toBe("refresh_token_reuse");
  });

  it("after 30 s: a reuse, which revokes the device", async () => {
    const first = await deviceLogin("member");
    const second = await rotate(first.refresh_token);
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + REFRESH_GRACE_MS + 1);
    await expectOAuthError(await refresh(first.refresh_token), 400, "invalid_grant");
    await expectOAuthError(await refresh(second.refresh_token), 400, "invalid_grant");
    expect(await revokedReason(first.device_id)).toBe("refresh_token_reuse");
  });

  it("after its successor was used: a reuse, which revokes the device", async () => {
    const first = await deviceLogin("member");
    const second = await rotate(first.refresh_token);
    const third = await rotate(second.refresh_token);
    await expectOAuthError(await refresh(first.refresh_token), 400, "invalid_grant");
    await expectOAuthError(await refresh(third.refresh_token), 400, "invalid_grant");
    expect(await revokedReason(first.device_id)).toBe("refresh_token_reuse");
  });

  it("two refreshes with the same token at the same moment both get the one new pair", async () => {
    const first = await deviceLogin("member");
    const [a, b] = await Promise.all([rotate(first.refresh_token), rotate(first.refresh_token)]);
    expect(a.refresh_token).toBe(b.refresh_token);
    expect(await revokedReason(first.device_id)).toBeNull();
    await rotate(a.refresh_token);
  });

  it("naming another client_id changes nothing, not even the one retry", async () => {
    const first = await deviceLogin("member");
    const second = await rotate(first.refresh_token);
    const other = await call("/auth/token", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: first.refresh_token, client_id: "other" }).toString(),
    });
    await expectOAuthError(other, 400, "invalid_grant");
    expect((await rotate(first.refresh_token)).refresh_token).toBe(second.refresh_token);
  });
});

describe("what the grace window stores", () => {
  it("the successor only sealed under a key from the old token; the seal is wiped when taken", async () => {
    const first = await deviceLogin("member");
    const second = await rotate(first.refresh_token);
    const [row] = await sql<{ hash: string; successor_hash: string; sealed: string; expires_at: number; retried_at: number | null }>(
      "SELECT * FROM refresh_grace WHERE hash = ?",
      await sha256(first.refresh_token),
    );
    expect(row).toMatchObject({ successor_hash: await sha256(second.refresh_token), retried_at: null });
    const dump = JSON.stringify(await sql("SELECT * FROM refresh_grace"));
    expect(dump).not.toContain(second.refresh_token);
    expect(dump).not.toContain(second.refresh_token.slice(4));
    expect(dump).not.toContain(first.refresh_token.slice(4));
    // Only the old token opens it; its hash (what the tables hold) does not.
    expect(await unseal(first.refresh_token, row!.sealed, row!.successor_hash)).toBe(second.refresh_token);
    expect(await unseal(row!.hash, row!.sealed, row!.successor_hash)).toBeNull();
    expect(await unseal(second.refresh_token, row!.sealed, row!.successor_hash)).toBeNull();
    await rotate(first.refresh_token);
    const [taken] = await sql<{ sealed: string; retried_at: number | null }>("SELECT sealed, retried_at FROM refresh_grace WHERE hash = ?", row!.hash);
    expect(taken).toEqual({ sealed: "", retried_at: expect.any(Number) });
  });

  it("a seal bound to one successor hash does not open as another", async () => {
    const sealed = await seal("opr_old", "opr_new", await sha256("opr_new"));
    expect(await unseal("opr_old", sealed, await sha256("opr_new"))).toBe("opr_new");
    expect(await unseal("opr_old", sealed, await sha256("opr_other"))).toBeNull();
    expect(await unseal("opr_old", "garbage", await sha256("opr_new"))).toBeNull();
  });

  it("the account's alarm is set for the end of the window, and deletes the seal then (twice is harmless)", async () => {
    const first = await deviceLogin("member");
    const before = Date.now();
    await rotate(first.refresh_token);
    const hash = await sha256(first.refresh_token);
    const stub = env.ACCOUNT.getByName("account");
    const alarm = await runInDurableObject(stub, (_instance, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();
    expect(alarm!).toBeLessThanOrEqual(before + REFRESH_GRACE_MS + 5_000);
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + REFRESH_GRACE_MS + 1);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await sql("SELECT 1 FROM refresh_grace WHERE hash = ?", hash)).toEqual([]);
    await runDurableObjectAlarm(stub);
    expect(await sql("SELECT 1 FROM refresh_grace WHERE hash = ?", hash)).toEqual([]);
  });
});
