// 1,000 sessions heartbeating in batches of 100 over HTTP, then all stopping at once: every one expires, none stays
// online, and each expiry reaches a phone once and the real origin once (applied once, and delivered once on the wire).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MEMBER, OWNER } from "../../support/identity.ts";
import { callEdge, originEvents, sleep, subscribe, until, type OriginEvent, type Subscriber } from "../../support/presence.ts";
import { startRelay, type Relay } from "../../support/relay.ts";
import { spawnOrigin, trustEdgeEnv, type SpawnedOrigin } from "../../support/spawn-origin.ts";
import { startStack, type Stack } from "../../support/stack.ts";

const SESSIONS = 1000;
const BATCH = 100;
const ROUNDS = 3;
// A TTL of 3 s with beats every ~1.05 s: on two loaded cores a batch can take a while, and a beat late enough to let a
// session lapse would be a second expiry the test would count against the hub.
const TTL_S = 3;

interface PresenceList {
  seq: number;
  sessions: { id: string; status: string; alive: boolean; reason: string | null; owner: string }[];
}

let stack: Stack;
let relay: Relay;
let origin: SpawnedOrigin;
let originDir: string;
let sub: Subscriber;
const tokens = { owner: "", member: "" };
const ids = Array.from({ length: SESSIONS }, (_, i) => `m-${String(i).padStart(4, "0")}`);
/** Half the sessions each, so two users' agents beat at the same time. */
const tokenFor = (i: number) => (i < SESSIONS / 2 ? tokens.owner : tokens.member);
let lastBeatAt = 0;
let accepted = 0;
const refused: unknown[] = [];
const allExpiredAt = { subscriber: 0, origin: 0, list: 0 };
let applied: OriginEvent[] = [];

/** One batch loop: beat its 100 sessions, then again each time 1.05 s have passed since the last answer. */
async function beatBatch(batch: string[], token: string): Promise<void> {
  for (let round = 0; round < ROUNDS; round++) {
    if (round > 0) await sleep(1_050);
    const res = await callEdge<{ sessions: { id: string; status: string; error?: unknown }[] }>(stack.edgeUrl, token, "POST", "/api/heartbeat", {
      sessions: batch.map((id) => ({ id, name: id, hostname: "farm", ...(round === 0 ? { pid: Number(id.slice(2)) } : {}) })),
    });
    expect(res.status).toBe(200);
    for (const s of res.body.sessions) {
      if (s.status === "accepted") accepted++;
      else refused.push(s);
    }
    lastBeatAt = Math.max(lastBeatAt, Date.now());
  }
}

const presence = async () => (await callEdge<PresenceList>(stack.edgeUrl, tokens.owner, "GET", "/api/presence")).body;

/** How many times each key occurs. */
function tally<T>(items: T[], key: (item: T) => string | null): Map<string | null, number> {
  const counts = new Map<string | null, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

beforeAll(async () => {
  originDir = mkdtempSync(join(tmpdir(), "outpost-origin-"));
  origin = await spawnOrigin(["--data-dir", originDir], trustEdgeEnv());
  relay = await startRelay(origin.url);
  stack = await startStack({ originUrl: relay.url, vars: { HEARTBEAT_TTL_SECONDS: String(TTL_S), HEARTBEAT_INTERVAL_SECONDS: "1" } });
  tokens.owner = await stack.mintToken(OWNER);
  tokens.member = await stack.mintToken(MEMBER);
  sub = await subscribe(stack.edgeUrl, tokens.member);

  const batches = Array.from({ length: SESSIONS / BATCH }, (_, b) => ids.slice(b * BATCH, (b + 1) * BATCH));
  await Promise.all(batches.map((batch, b) => beatBatch(batch, tokenFor(b * BATCH))));
}, 60_000);

afterAll(async () => {
  sub?.close();
  await stack?.stop();
  await origin?.stop();
  await relay?.close();
  if (originDir) rmSync(originDir, { recursive: true, force: true });
});

describe(`${SESSIONS} sessions heartbeating, then all stopping at once`, () => {
  it("every heartbeat was accepted and every session was alive at the last one", async () => {
    expect(refused).toEqual([]);
    expect(accepted).toBe(SESSIONS * ROUNDS);
    // Listed right after the last beat: all of them, alive (the TTL has not run out since).
    const list = await presence();
    expect(list.sessions).toHaveLength(SESSIONS);
    expect(Object.fromEntries(tally(list.sessions, (s) => s.owner))).toEqual({ [OWNER]: SESSIONS / 2, [MEMBER]: SESSIONS / 2 });
    const alive = list.sessions.filter((s) => s.alive).length;
    const expiredEarly = sub.events().filter((e) => e.type === "session_expired").length;
    expect({ alive, expiredEarly }).toEqual({ alive: SESSIONS, expiredEarly: 0 });
  });

  it("all expire: none stays online, each session_expired reaches the phone once and the origin once", async () => {
    const expiredAtPhone = () => sub.events().filter((e) => e.type === "session_expired");
    await until(() => (expiredAtPhone().length >= SESSIONS ? true : undefined), TTL_S * 1000 + 20_000, `${SESSIONS} expiries at the phone`);
    allExpiredAt.subscriber = Math.max(...sub.messages.filter((m) => m.event?.type === "session_expired").map((m) => m.receivedAt));
    await until(
      () => {
        applied = originEvents(originDir);
        return applied.filter((e) => e.type === "session_expired").length >= SESSIONS ? true : undefined;
      },
      20_000,
      `${SESSIONS} expiries at the origin`,
    );
    allExpiredAt.origin = Math.max(...applied.filter((e) => e.type === "session_expired").map((e) => e.received_at));
    const list = await presence();
    allExpiredAt.list = Date.now();
    expect(list.sessions.filter((s) => s.alive || s.status !== "failed" || s.reason !== "agent_disconnected")).toEqual([]);

    // Another TTL later nothing more has happened: no session came back, none expired twice.
    await sleep(TTL_S * 1000 + 500);
    applied = originEvents(originDir);
    const phone = tally(
      sub.events().filter((e) => e.type === "session_expired"),
      (e) => e.sessionId,
    );
    const atOrigin = tally(
      applied.filter((e) => e.type === "session_expired"),
      (e) => e.session_id,
    );
    for (const counts of [phone, atOrigin]) {
      expect([...counts.keys()].sort()).toEqual(ids);
      expect([...counts.values()].filter((n) => n !== 1)).toEqual([]);
    }
    const online = tally(
      applied.filter((e) => e.type === "session_online"),
      (e) => e.session_id,
    );
    expect([...online.values()].filter((n) => n !== 1)).toEqual([]);
    expect(online.size).toBe(SESSIONS);
    expect((await presence()).sessions.filter((s) => s.alive)).toEqual([]);
  });

  it("on the wire: every event the hub issued was acknowledged by the origin exactly once, with no duplicates", async () => {
    const { seq } = await presence();
    expect(applied.map((e) => e.seq)).toEqual(Array.from({ length: seq }, (_, i) => i + 1));
    const acked = relay.acknowledged();
    const ok = relay.deliveries.filter((d) => d.status === 200);
    expect(relay.deliveries.filter((d) => d.status !== 200)).toEqual([]);
    expect(acked.size).toBe(seq);
    expect([...acked.values()].filter((n) => n !== 1)).toEqual([]);
    expect(ok.reduce((sum, d) => sum + d.duplicates, 0)).toBe(0);
    expect(ok.flatMap((d) => d.seqs)).toEqual(applied.map((e) => e.seq));

    // The origin's own sessions agree: all 1,000 failed with agent_disconnected.
    const db = new DatabaseSync(join(originDir, "origin.db"), { readOnly: true });
    try {
      const rows = db.prepare("SELECT status, reason, COUNT(*) AS n FROM sessions GROUP BY status, reason").all();
      expect(rows).toEqual([{ status: "failed", reason: "agent_disconnected", n: SESSIONS }]);
    } finally {
      db.close();
    }
    const expiredEvents = applied.filter((e) => e.type === "session_expired").length;
    console.log(
      `faults: ${SESSIONS} sessions, ${accepted} heartbeats in ${(SESSIONS / BATCH) * ROUNDS} batches; ${seq} events issued, ` +
        `${acked.size} acknowledged by the origin in ${ok.length} deliveries, ${expiredEvents} session_expired applied, ` +
        `${ok.reduce((sum, d) => sum + d.duplicates, 0)} duplicates; all expired ${allExpiredAt.subscriber - lastBeatAt} ms after the last beat ` +
        `at the phone, ${allExpiredAt.origin - lastBeatAt} ms at the origin (TTL ${TTL_S * 1000} ms)`,
    );
  });
});
