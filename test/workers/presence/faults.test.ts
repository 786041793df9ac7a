// The hub's alarm throwing half-way (storage refuses a write through a temporary SQLite trigger): the runtime's retry
// finishes the job, nothing is lost and no event is issued twice; the origin, keeping the first of each id, applies each once.
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { PresenceHub } from "../../../durable-objects/presence/hub.ts";
import { CALLER, TTL_MS, clock, fakeOrigin, hub, hubIdOf, restart, runDueAlarm, watchHub, type Socket } from "./helpers.ts";

let origin: ReturnType<typeof fakeOrigin>;
beforeEach(() => {
  origin = fakeOrigin();
});
afterEach(() => origin.restore());

type Stub = DurableObjectStub<PresenceHub>;

/** Makes storage refuse writes matching `when` until the trigger is dropped (`on`: e.g. "INSERT ON events"). */
function failWrites(stub: Stub, on: string, when: string): Promise<void> {
  return runInDurableObject(stub, (_hub, state) => {
    state.storage.sql.exec(`CREATE TRIGGER fault BEFORE ${on} WHEN ${when} BEGIN SELECT RAISE(ABORT, 'storage failed half-way'); END`);
  });
}

function healStorage(stub: Stub): Promise<void> {
  return runInDurableObject(stub, (_hub, state) => void state.storage.sql.exec("DROP TRIGGER fault"));
}

/** The runtime retries an alarm that threw; the retry runs the same handler. */
function retryAlarm(stub: Stub): Promise<void> {
  return runInDurableObject(stub, (instance: PresenceHub) => instance.alarm());
}

/** Runs every alarm that is due now, until nothing is. */
async function settle(stub: Stub): Promise<void> {
  for (let i = 0; i < 10 && (await runDueAlarm(stub)); i++);
}

async function beatMany(stub: Stub, ids: string[]): Promise<void> {
  for (let i = 0; i < ids.length; i += 100) {
    const results = await stub.heartbeat(
      CALLER,
      ids.slice(i, i + 100).map((id) => ({ id })),
    );
    expect(results.every((r) => r.ok)).toBe(true);
  }
}

/** What an origin that keeps the first delivery of each id (as the real one does) has applied, in order. */
function appliedAtOrigin(hubId: string) {
  const seen = new Set<string>();
  return origin.eventsOf(hubId).filter((e) => !seen.has(e.id) && seen.add(e.id));
}

function tally(values: (string | null)[]): Map<string | null, number> {
  const counts = new Map<string | null, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return counts;
}

/** from, from + 1, …, to. */
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

const typeOf = (m: Record<string, unknown>) => (m.event as { type?: string } | undefined)?.type;

describe("the alarm throwing half-way", () => {
  // The test clock: alarms run when a test runs them (the runtime's own retry is the last describe's).
  beforeEach(() => void clock.start());
  afterEach(() => clock.stop());

  it("through a mass expiry (the 101st of 250 refused): the retry expires the rest, each session once, at phones and at the origin", async () => {
    const stub = hub();
    const ids = Array.from({ length: 250 }, (_, i) => `x${i}`);
    await beatMany(stub, ids);
    await settle(stub);
    const socket = await watchHub(stub);
    await socket.next((m) => m.type === "snapshot");
    clock.advance(TTL_MS);
    await failWrites(stub, "INSERT ON events", "NEW.type = 'session_expired' AND (SELECT COUNT(*) FROM events WHERE type = 'session_expired') >= 100");
    await expect(runDurableObjectAlarm(stub)).rejects.toThrow("storage failed half-way");
    await healStorage(stub);
    // What was committed before the failure stays; nothing of it was delivered yet.
    expect((await stub.list()).sessions.filter((s) => s.status === "failed")).toHaveLength(100);
    await retryAlarm(stub);
    await settle(stub);
    // And once more, as an at-least-once runtime may: nothing changes.
    await retryAlarm(stub);

    const list = await stub.list();
    expect(list.sessions.filter((s) => s.status !== "failed" || s.alive)).toEqual([]);
    const expiries = await collect(socket, (m) => typeOf(m) === "session_expired", ids.length);
    expect([...tally(expiries.map((m) => (m.event as { sessionId: string }).sessionId)).values()].every((n) => n === 1)).toBe(true);
    const atOrigin = origin.eventsOf(hubIdOf(stub)).filter((e) => e.type === "session_expired");
    expect(atOrigin).toHaveLength(ids.length);
    expect(new Set(atOrigin.map((e) => e.sessionId))).toEqual(new Set(ids));
    // One event per seq, none skipped: online and expiry for each session, plus origin_online.
    expect(appliedAtOrigin(hubIdOf(stub)).map((e) => e.seq)).toEqual(range(1, list.seq));
    expect(list.seq).toBe(2 * ids.length + 1);
    socket.close();
  });

  it("after the origin stored a batch but before its acknowledgement was written: that batch is resent byte for byte, then the rest", async () => {
    const stub = hub();
    await beatMany(
      stub,
      Array.from({ length: 250 }, (_, i) => `y${i}`),
    );
    // The second batch (seqs 101-200) reaches the origin; deleting it from the outbox fails.
    await failWrites(stub, "DELETE ON outbox", "OLD.seq > 100");
    await expect(runDurableObjectAlarm(stub)).rejects.toThrow("storage failed half-way");
    await healStorage(stub);
    expect(origin.state.deliveries.map((d) => d.events.map((e) => e.seq))).toEqual([range(1, 100), range(101, 200)]);
    expect((await stub.stats()).outboxDepth).toBe(151);
    await retryAlarm(stub);

    const deliveries = origin.state.deliveries;
    expect(deliveries.map((d) => d.events.map((e) => e.seq))).toEqual([range(1, 100), range(101, 200), range(101, 200), range(201, 251)]);
    expect(deliveries[2]?.body).toBe(deliveries[1]?.body);
    // The hub issued each event once; the origin, deduplicating by id, applied each once and in order.
    const { seq } = await stub.list();
    expect(seq).toBe(251);
    expect(appliedAtOrigin(hubIdOf(stub)).map((e) => e.seq)).toEqual(range(1, seq));
    expect(await stub.stats()).toMatchObject({ outboxDepth: 0, lastSeq: 251 });
  });

  it("while writing that the origin came online: the retry probes again and origin_online is issued once, not lost", async () => {
    const stub = hub();
    const socket = await watchHub(stub);
    await socket.next((m) => m.type === "snapshot");
    await stub.heartbeat(CALLER, [{ id: "s1" }]);
    await failWrites(stub, "INSERT ON events", "NEW.type = 'origin_online'");
    await expect(runDurableObjectAlarm(stub)).rejects.toThrow("storage failed half-way");
    await healStorage(stub);
    await retryAlarm(stub);
    await settle(stub);
    await socket.next((m) => typeOf(m) === "origin_online");
    expect(socket.messages.filter((m) => typeOf(m) === "origin_online")).toHaveLength(1);
    expect(origin.eventsOf(hubIdOf(stub)).map((e) => e.type)).toEqual(["session_online", "origin_online"]);
    // Stored too, not only in memory: a restarted hub still knows.
    const again = await restart(stub);
    expect((await again.list()).origin.online).toBe(true);
    socket.close();
  });

  it("a gateway report whose write fails is refused, and the next report issues the event", async () => {
    const stub = hub();
    await stub.heartbeat(CALLER, [{ id: "s1" }]);
    await settle(stub);
    const seq = (await stub.list()).seq;
    // One failed request is not enough to call the origin away (the state is debounced): no event, nothing written.
    await stub.reportOrigin(false);
    expect((await stub.list()).seq).toBe(seq);
    await failWrites(stub, "INSERT ON events", "NEW.type = 'origin_offline'");
    const refused = await stub.reportOrigin(false).then(
      () => null,
      (err: unknown) => err,
    );
    expect(String(refused)).toContain("storage failed half-way");
    await healStorage(stub);
    expect((await stub.list()).origin.online).toBe(true);
    await stub.reportOrigin(false);
    expect(await stub.list()).toMatchObject({ seq: seq + 1, origin: { online: false } });
    await settle(stub);
    expect(origin.eventsOf(hubIdOf(stub)).filter((e) => e.type === "origin_offline")).toHaveLength(1);
  });
});

describe("in real time", () => {
  it("the runtime itself retries the alarm that threw, and the retry expires the rest once each", async () => {
    const stub = hub();
    const ids = Array.from({ length: 20 }, (_, i) => `r${i}`);
    await beatMany(stub, ids);
    const socket = await watchHub(stub);
    await socket.next((m) => m.type === "snapshot");
    await failWrites(stub, "INSERT ON events", "NEW.type = 'session_expired' AND (SELECT COUNT(*) FROM events WHERE type = 'session_expired') >= 10");
    // The runtime's alarm fires at the expiry, commits ten expiries and throws; storage heals before its retry.
    await collect(socket, (m) => typeOf(m) === "session_expired", 10, TTL_MS + 3_000);
    expect((await stub.list()).sessions.filter((s) => s.status === "failed")).toHaveLength(10);
    await healStorage(stub);
    const expiries = await collect(socket, (m) => typeOf(m) === "session_expired", ids.length, 15_000);
    expect([...tally(expiries.map((m) => (m.event as { sessionId: string }).sessionId)).entries()].sort()).toEqual(ids.map((id) => [id, 1]).sort());
    expect((await stub.list()).sessions.filter((s) => s.status !== "failed")).toEqual([]);
    socket.close();
  }, 30_000);
});

/** Waits for `count` messages matching `pred` (already received ones count) and returns every match. */
async function collect(socket: Socket, pred: (m: Record<string, unknown>) => boolean, count: number, ms = 2_000): Promise<Record<string, unknown>[]> {
  const deadline = Date.now() + ms;
  while (socket.messages.filter(pred).length < count) await socket.next(pred, Math.max(0, deadline - Date.now()));
  return socket.messages.filter(pred);
}
