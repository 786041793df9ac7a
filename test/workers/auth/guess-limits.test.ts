// Wrong user codes are capped per account, per network and overall, and a few accounts cannot lock out everyone else.
import { describe, expect, it } from "vitest";
import { GUESS_LIMITS, GUESS_WINDOW_MS } from "../../../durable-objects/account/guess-limits.ts";
import { ALLOWED_ORIGIN, call, expectError, freshIp, jsonInit, mint, sql, startDeviceLogin } from "./helpers.ts";

const someone = () => mint({ sub: `outpost:guesser-${crypto.randomUUID()}` });

function lookup(userCode: string, token: string, ip = freshIp()): Promise<Response> {
  return call("/auth/device/lookup", jsonInit({ user_code: userCode }, { authorization: `Bearer ${token}`, "cf-connecting-ip": ip, ...ALLOWED_ORIGIN }));
}

async function wrong(token: string, ip?: string): Promise<void> {
  await expectError(await lookup("BBBB-BBBB", token, ip), 404, "NOT_FOUND");
}

const globalCount = async () => (await sql<{ count: number }>("SELECT count FROM guesses WHERE key = 'global'"))[0]?.count ?? 0;

describe("caps on wrong user codes", () => {
  it(`caps a network at ${GUESS_LIMITS.perNetwork} wrong codes however many accounts guess from it (IPv6 per /64)`, async () => {
    const dc = await startDeviceLogin();
    const prefix = `2001:db8:${((Math.random() * 0xffff) | 0).toString(16)}:77`;
    // Three accounts, each under its own cap, from addresses of one /64.
    let n = 0;
    for (let a = 0; n < GUESS_LIMITS.perNetwork; a++) {
      const token = await someone();
      for (let i = 0; i < GUESS_LIMITS.perUser - 3 && n < GUESS_LIMITS.perNetwork; i++, n++) await wrong(token, `${prefix}::${(n + 1).toString(16)}`);
    }
    // A fourth account on that network is refused, even with the right code; from another network it passes.
    const fresh = await someone();
    await expectError(await lookup(dc.user_code, fresh, `${prefix}::abcd`), 429, "RATE_LIMITED");
    expect((await lookup(dc.user_code, fresh, `198.51.100.${(Math.random() * 250) | 0}`)).status).toBe(200);
  });

  it("one account cannot fill the global backstop: it stops at its own cap and others are untouched", async () => {
    const dc = await startDeviceLogin();
    const before = await globalCount();
    const guesser = await someone();
    for (let i = 0; i < GUESS_LIMITS.perUser; i++) await wrong(guesser);
    for (let i = 0; i < 5; i++) await expectError(await lookup("BBBB-BBBB", guesser), 429, "RATE_LIMITED");
    // Refused lookups are not counted: the account spent exactly its cap of the backstop.
    expect((await globalCount()) - before).toBe(GUESS_LIMITS.perUser);
    expect((await lookup(dc.user_code, await someone())).status).toBe(200);
  });

  it("ten accounts guessing all they may (the old global cap) lock out no one else", async () => {
    const dc = await startDeviceLogin();
    for (let a = 0; a < 10; a++) {
      const token = await someone();
      for (let i = 0; i < GUESS_LIMITS.perUser; i++) await wrong(token);
    }
    expect(await globalCount()).toBeGreaterThanOrEqual(100);
    expect((await lookup(dc.user_code, await someone())).status).toBe(200);
  });

  it("once the backstop is full it stops only accounts and networks that guessed wrong; a clean one still gets in", async () => {
    const dc = await startDeviceLogin();
    const typo = await someone();
    const typoIp = freshIp();
    await wrong(typo, typoIp);
    // As if a hundred accounts on fifty networks had spent their caps in this window.
    await sql(
      "INSERT INTO guesses (key, window_start, count) VALUES ('global', ?, ?) ON CONFLICT(key) DO UPDATE SET window_start = excluded.window_start, count = excluded.count",
      Date.now(),
      GUESS_LIMITS.global,
    );
    try {
      await expectError(await lookup(dc.user_code, typo, freshIp()), 429, "RATE_LIMITED");
      await expectError(await lookup(dc.user_code, await someone(), typoIp), 429, "RATE_LIMITED");
      expect((await lookup(dc.user_code, await someone())).status).toBe(200);
    } finally {
      await sql("DELETE FROM guesses WHERE key = 'global'");
    }
  });

  it("counts are per window: a window that has passed counts nothing", async () => {
    const dc = await startDeviceLogin();
    const guesser = await someone();
    for (let i = 0; i < GUESS_LIMITS.perUser; i++) await wrong(guesser);
    await expectError(await lookup(dc.user_code, guesser), 429, "RATE_LIMITED");
    await sql("UPDATE guesses SET window_start = window_start - ? WHERE key LIKE 'user:%'", GUESS_WINDOW_MS);
    expect((await lookup(dc.user_code, guesser)).status).toBe(200);
  });
});
