// Grants that end: an owner's grant may carry an expiry; it stops working at once when it passes, the alarm deletes it, bad expiries change nothing.
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, inject, it, vi } from "vitest";
import { Grants } from "../../../durable-objects/account/grants.ts";
import { migrate } from "../../../durable-objects/account/schema.ts";
import type { AccessList, GrantResponse } from "../../../shared/identity.ts";
import { spyOrigin } from "../helpers.ts";
import { bearer, call, callEnv, expectError, jsonInit, makeEnv, mint, sql, tokenFor } from "./helpers.ts";

const account = () => env.ACCOUNT.getByName("account");
const tokenOf = (email: string) => mint({ sub: `outpost:${email}`, email });
const path = (email: string) => `/api/access/${encodeURIComponent(email)}`;
const put = async (email: string, body: unknown) => call(path(email), jsonInit(body, { authorization: `Bearer ${await tokenFor("owner")}` }, "PUT"));
const list = async () => (await call("/api/access", bearer(await tokenFor("owner")))).json<AccessList>();
const entryOf = async (email: string) => (await list()).entries.find((e) => e.email === email);
const iso = (ms: number) => new Date(ms).toISOString();
const DAY = 86_400_000;

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe("a grant with an end", () => {
  it("is accepted with its end, listed with it, and brings the account's alarm forward to it", async () => {
    const email = "ends.listed@example.com";
    const end = Date.now() + 2 * DAY;
    const res = await put(email, { role: "viewer", expiresAt: iso(end) });
    expect(res.status).toBe(200);
    const { entry } = await res.json<GrantResponse>();
    expect(entry).toMatchObject({ email, role: "viewer", source: "granted", expiresAt: iso(end) });
    expect(await entryOf(email)).toMatchObject({ expiresAt: iso(end) });
    const alarm = await runInDurableObject(account(), (_o, state) => state.storage.getAlarm());
    expect(alarm ?? Number.POSITIVE_INFINITY).toBeLessThanOrEqual(end);
    // A time zone offset is the same instant, answered in UTC.
    const soon = new Date(Date.now() + DAY);
    const local = `${soon.toISOString().slice(0, 10)}T23:59:00-01:00`;
    const shifted = await put(email, { role: "viewer", expiresAt: local });
    expect(shifted.status).toBe(200);
    expect((await shifted.json<GrantResponse>()).entry.expiresAt).toBe(new Date(local).toISOString());
    // A PUT replaces the grant: without an expiry it no longer ends.
    expect((await (await put(email, { role: "viewer" })).json<GrantResponse>()).entry.expiresAt).toBeNull();
    expect(await entryOf(email)).toMatchObject({ expiresAt: null });
    expect(await sql("SELECT expires_at FROM grants WHERE email = ?", email)).toEqual([{ expires_at: null }]);
  });

  it("works on a proxied request until it ends, then is refused at once, before the 30 s roles cache runs out", async () => {
    const email = "ends.proxied@example.com";
    const workerEnv = makeEnv({ ORIGIN_URL: inject("originUrl") });
    const token = await tokenOf(email);
    const start = Date.now();
    const end = start + 40_000;
    expect((await put(email, { role: "member", expiresAt: iso(end) })).status).toBe(200);
    const before = await callEnv(workerEnv, "/api/echo/ends", { method: "POST", body: "x", ...bearer(token) });
    expect(before.status).toBe(200);
    expect(await before.json()).toMatchObject({ path: "/api/echo/ends", body: "x" });

    // Move the clock: past the cache's 30 s, so the next request reloads the grants (with their end) from the account.
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(start + 31_000);
    expect(await (await callEnv(workerEnv, "/auth/me", bearer(token))).json()).toMatchObject({ email, role: "member" });
    // From here on only the cached end can stop it: the account itself now says the grant never ends.
    await sql("UPDATE grants SET expires_at = NULL WHERE email = ?", email);
    vi.setSystemTime(end + 1000);
    const origin = spyOrigin();
    const after = await callEnv(workerEnv, "/api/echo/ends", { method: "POST", body: "x", ...bearer(token) });
    await expectError(after, 403, "FORBIDDEN");
    expect(origin).not.toHaveBeenCalled();
    await expectError(await callEnv(workerEnv, "/auth/me", bearer(token)), 403, "FORBIDDEN");
    await sql("DELETE FROM grants WHERE email = ?", email);
  });

  it("is gone from the list once it ends, even before the alarm; the alarm deletes its row and keeps the others", async () => {
    const ended = "ends.alarm@example.com";
    const running = "ends.later@example.com";
    const forever = "never.ends@example.com";
    expect((await put(ended, { role: "member", expiresAt: iso(Date.now() + 60_000) })).status).toBe(200);
    expect((await put(running, { role: "member", expiresAt: iso(Date.now() + DAY) })).status).toBe(200);
    expect((await put(forever, { role: "viewer" })).status).toBe(200);
    // Time passes for one grant: its end is now behind us.
    await sql("UPDATE grants SET expires_at = ? WHERE email = ?", Date.now() - 1000, ended);
    expect(await entryOf(ended)).toBeUndefined();
    expect(await sql("SELECT email FROM grants WHERE email = ?", ended)).toHaveLength(1);

    expect(await runDurableObjectAlarm(account())).toBe(true);
    expect(await sql("SELECT email FROM grants WHERE email = ?", ended)).toEqual([]);
    expect((await sql<{ email: string }>("SELECT email FROM grants WHERE email IN (?, ?)", running, forever)).map((r) => r.email).sort()).toEqual([
      running,
      forever,
    ]);
    // The alarm set itself again, no later than the next grant's end; running it again changes nothing.
    const next = await runInDurableObject(account(), (_o, state) => state.storage.getAlarm());
    const runningEnd = (await entryOf(running))?.expiresAt;
    expect(runningEnd).toBeTypeOf("string");
    expect(next ?? Number.POSITIVE_INFINITY).toBeLessThanOrEqual(Date.parse(String(runningEnd)));
    expect(await runDurableObjectAlarm(account())).toBe(true);
    expect((await sql("SELECT email FROM grants WHERE email IN (?, ?)", running, forever)).length).toBe(2);
    // An ended grant cannot be removed: there is none any more.
    await expectError(await call(path(ended), { method: "DELETE", ...bearer(await tokenFor("owner")) }), 404, "NOT_FOUND");
    for (const email of [running, forever]) expect((await call(path(email), { method: "DELETE", ...bearer(await tokenFor("owner")) })).status).toBe(200);
  });
});

describe("bad expiries get 400 and change nothing", () => {
  const email = "bad.expiry@example.com";
  const now = Date.now();
  it.each([
    ["in the past", "2020-01-01T00:00:00Z", /not in the future/],
    ["a moment ago", iso(now - 5000), /not in the future/],
    ["more than a year away", iso(now + 367 * DAY), /more than 366 days/],
    ["far in the future", "9999-12-31T23:59:59Z", /more than 366 days/],
    ["a date without a time", "2030-01-01", /ISO 8601/],
    ["a time without a zone", iso(now + DAY).slice(0, 19), /ISO 8601/],
    ["words", "tomorrow", /ISO 8601/],
    ["empty", "", /ISO 8601/],
    ["an impossible date", `${new Date(now + DAY).getUTCFullYear() + 1}-02-30T00:00:00Z`, /ISO 8601/],
    ["month 13", "2030-13-01T00:00:00Z", /ISO 8601/],
    ["hour 25", "2030-01-01T25:00:00Z", /ISO 8601/],
    ["a number", now + DAY, /ISO 8601/],
    ["an object", { at: iso(now + DAY) }, /ISO 8601/],
    ["a boolean", true, /ISO 8601/],
  ])("%s", async (_what, expiresAt, message) => {
    // An existing grant that does not end: a refused change must leave it exactly so.
    expect((await put(email, { role: "member" })).status).toBe(200);
    const before = await sql("SELECT role, granted_at, expires_at FROM grants WHERE email = ?", email);
    const alarmBefore = await runInDurableObject(account(), (_o, state) => state.storage.getAlarm());
    const text = await expectError(await put(email, { role: "viewer", expiresAt }), 400, "BAD_REQUEST");
    expect((JSON.parse(text) as { error: { message: string } }).error.message).toMatch(message);
    expect(await sql("SELECT role, granted_at, expires_at FROM grants WHERE email = ?", email)).toEqual(before);
    expect(await runInDurableObject(account(), (_o, state) => state.storage.getAlarm())).toBe(alarmBefore);
    expect(await entryOf(email)).toMatchObject({ role: "member", expiresAt: null });
  });

  it("a new email with a bad expiry is not added at all", async () => {
    const fresh = "bad.expiry.new@example.com";
    await expectError(await put(fresh, { role: "member", expiresAt: "2020-01-01T00:00:00Z" }), 400, "BAD_REQUEST");
    expect(await sql("SELECT email FROM grants WHERE email = ?", fresh)).toEqual([]);
  });
});

describe("an account stored before grants could end", () => {
  it("gets the column added, and its grants keep working and never end", async () => {
    const legacy = env.ACCOUNT.getByName("legacy-grants");
    const grants = await runInDurableObject(legacy, (_o, state) => {
      const db = state.storage.sql;
      db.exec("DROP TABLE grants");
      db.exec("CREATE TABLE grants (email TEXT PRIMARY KEY, role TEXT NOT NULL, granted_by TEXT NOT NULL, granted_at INTEGER NOT NULL)");
      db.exec("INSERT INTO grants VALUES ('old@example.com', 'member', 'owner@example.com', 1)");
      migrate(db);
      migrate(db); // twice: the column is added once
      return new Grants(db).list();
    });
    expect(grants).toEqual([{ email: "old@example.com", role: "member", grantedBy: "owner@example.com", grantedAt: 1, expiresAt: null }]);
  });
});
