// The account object's one alarm: set for the earliest thing due, it prunes expired device codes and is idempotent.
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { DEVICE_CODE_TTL_S, KEEP_EXPIRED_MS } from "../../../durable-objects/account/device-login.ts";
import { expectOAuthError, poll, sha256, sql, startDeviceLogin } from "./helpers.ts";

afterEach(() => vi.useRealTimers());

const stub = () => env.ACCOUNT.getByName("account");
const alarmAt = () => runInDurableObject(stub(), (_instance, state) => state.storage.getAlarm());

describe("the account alarm", () => {
  it("is set no later than when a new device code becomes prunable", async () => {
    const before = Date.now();
    await startDeviceLogin();
    const at = await alarmAt();
    expect(at).not.toBeNull();
    expect(at!).toBeLessThanOrEqual(before + DEVICE_CODE_TTL_S * 1000 + KEEP_EXPIRED_MS + 5_000);
  });

  it("deletes device codes once they are kept long enough past their expiry, and keeps the others", async () => {
    const old = await startDeviceLogin();
    const oldHash = await sha256(old.device_code);
    vi.useFakeTimers({ toFake: ["Date"] });
    // Expired, but within the time a late poll still gets expired_token.
    vi.setSystemTime(Date.now() + DEVICE_CODE_TTL_S * 1000 + 1_000);
    const young = await startDeviceLogin();
    expect(await runDurableObjectAlarm(stub())).toBe(true);
    expect(await sql("SELECT 1 FROM device_codes WHERE device_code_hash = ?", oldHash)).toHaveLength(1);
    await expectOAuthError(await poll(old.device_code), 400, "expired_token");
    // Past the keeping time: gone, and a poll is now simply invalid.
    vi.setSystemTime(Date.now() + KEEP_EXPIRED_MS);
    expect(await runDurableObjectAlarm(stub())).toBe(true);
    expect(await sql("SELECT 1 FROM device_codes WHERE device_code_hash = ?", oldHash)).toEqual([]);
    await expectOAuthError(await poll(old.device_code), 400, "invalid_grant");
    expect(await sql("SELECT 1 FROM device_codes WHERE device_code_hash = ?", await sha256(young.device_code))).toHaveLength(1);
    // Running again deletes nothing more and sets the next alarm for the young code.
    await runDurableObjectAlarm(stub());
    expect(await sql("SELECT 1 FROM device_codes WHERE device_code_hash = ?", await sha256(young.device_code))).toHaveLength(1);
    const next = await alarmAt();
    expect(next).not.toBeNull();
    expect(next!).toBeGreaterThan(Date.now());
  });

  it("prunes spent guess windows", async () => {
    await sql("INSERT OR REPLACE INTO guesses (key, window_start, count) VALUES ('user:stale', ?, 3)", Date.now() - 16 * 60 * 1000);
    await runDurableObjectAlarm(stub());
    expect(await sql("SELECT 1 FROM guesses WHERE key = 'user:stale'")).toEqual([]);
  });
});
