// workerd restarted twice with events in the hub's outbox while the origin is down, the origin back only afterwards:
// every event reaches the origin once, in seq order, as counted on the wire by a relay in front of the real origin.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MEMBER, OWNER } from "../../support/identity.ts";
import { callEdge, originEvents, sleep, subscribe, until, type OriginEvent } from "../../support/presence.ts";
import { startRelay, type Relay } from "../../support/relay.ts";
import { spawnOrigin, trustEdgeEnv, type SpawnedOrigin } from "../../support/spawn-origin.ts";
import { startStack, type Stack } from "../../support/stack.ts";
import { killChild } from "./helpers.ts";

interface PresenceList {
  seq: number;
  sessions: { id: string; status: string; alive: boolean; reason: string | null; exitCode: number | null }[];
}

let stack: Stack;
let relay: Relay;
let origin: SpawnedOrigin;
let persistDir: string;
let originDir: string;
let agent: string;
let watcher: string;
/** The last seq the origin had acknowledged before it was killed. */
let deliveredBeforeKill = 0;
/** When the origin listened again. */
let originBackAt = 0;
/** Every event the hub issued, in seq order, as a phone replaying from the start sees it. */
let log: { id: string; seq: number; type: string; sessionId: string | null }[] = [];
let applied: OriginEvent[] = [];

const edge = <T = Record<string, unknown>>(method: string, path: string, body?: unknown) => callEdge<T>(stack.edgeUrl, agent, method, path, body);
const sessionIds = ["f-early", "f-a", "f-b", "f-c", "f-d", "f-e"];

async function presence(): Promise<PresenceList> {
  return (await edge<PresenceList>("GET", "/api/presence")).body;
}

/** A phone request through the edge to the origin: 502 while it is down, and what tells the hub it is back. */
async function proxied(): Promise<number> {
  return (await edge("GET", "/api/sessions")).status;
}

beforeAll(async () => {
  persistDir = mkdtempSync(join(tmpdir(), "outpost-edge-state-"));
  originDir = mkdtempSync(join(tmpdir(), "outpost-origin-"));
  origin = await spawnOrigin(["--data-dir", originDir], trustEdgeEnv());
  relay = await startRelay(origin.url);
  stack = await startStack({
    originUrl: relay.url,
    persistTo: persistDir,
    vars: { HEARTBEAT_TTL_SECONDS: "2", HEARTBEAT_INTERVAL_SECONDS: "1" },
  });
  agent = await stack.mintToken(OWNER);
  watcher = await stack.mintToken(MEMBER);

  // While the origin is up, f-early reaches it; it is killed only once nothing is in flight.
  expect((await edge("POST", "/api/heartbeat/f-early", { name: "early" })).status).toBe(200);
  expect(await proxied()).toBe(200);
  deliveredBeforeKill = await until(
    async () => {
      const seq = (await presence()).seq;
      return originEvents(originDir).at(-1)?.seq === seq ? seq : undefined;
    },
    10_000,
    "f-early at the origin",
  );

  await killChild(origin.child);
  expect(await proxied()).toBe(502);
  // Origin down, first workerd: one session ends cleanly, one fails, one is left to expire.
  expect((await edge("POST", "/api/heartbeat/f-a", { name: "a" })).status).toBe(200);
  expect((await edge("POST", "/api/heartbeat/f-b", { name: "b" })).status).toBe(200);
  expect((await edge("DELETE", "/api/heartbeat/f-b", { exitCode: 0 })).status).toBe(200);
  expect((await edge("POST", "/api/heartbeat/f-c", { name: "c" })).status).toBe(200);
  expect((await edge("DELETE", "/api/heartbeat/f-c", { exitCode: 1 })).status).toBe(200);
  await stack.restartWorker();

  // Origin still down, second workerd: more events join the persisted backlog.
  expect((await edge("POST", "/api/heartbeat/f-d", { name: "d", status: "idle" })).status).toBe(200);
  await sleep(1_100); // one heartbeat a second per session
  expect((await edge("POST", "/api/heartbeat/f-d", { status: "working" })).status).toBe(200);
  expect((await edge("DELETE", "/api/heartbeat/f-d", {})).status).toBe(200);
  expect((await edge("POST", "/api/heartbeat/f-e", { name: "e" })).status).toBe(200);
  expect(await proxied()).toBe(502);
  await stack.restartWorker();

  // Third workerd, origin still down: the sessions left live expire here, into the outbox.
  await until(
    async () => {
      const list = await presence();
      return list.sessions.length === sessionIds.length && list.sessions.every((s) => !s.alive && s.status !== "working" && s.status !== "idle")
        ? true
        : undefined;
    },
    15_000,
    "every session to end or expire",
  );
  expect(originEvents(originDir).at(-1)?.seq).toBe(deliveredBeforeKill);

  // The origin comes back on its port with its database; the first phone request through the edge tells the hub.
  origin = await spawnOrigin(["--data-dir", originDir, "--port", new URL(origin.url).port], trustEdgeEnv());
  originBackAt = Date.now();
  expect(await proxied()).toBe(200);
  const last = await until(
    async () => {
      const seq = (await presence()).seq;
      return originEvents(originDir).at(-1)?.seq === seq ? seq : undefined;
    },
    15_000,
    "the backlog at the origin",
  );
  const replay = await subscribe(stack.edgeUrl, watcher, "?after=0");
  await until(() => (replay.events().at(-1)?.seq === last ? true : undefined), 5_000, "the replay from the start");
  replay.close();
  log = replay.events().map(({ id, seq, type, sessionId }) => ({ id, seq, type, sessionId }));
  applied = originEvents(originDir);
}, 90_000);

afterAll(async () => {
  await stack?.stop();
  await origin?.stop();
  await relay?.close();
  for (const dir of [persistDir, originDir]) if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("events queued across two workerd restarts while the origin was down", () => {
  it("the origin applied every event the hub issued, once each, in seq order", () => {
    expect(log.map((e) => e.seq)).toEqual(Array.from({ length: log.length }, (_, i) => i + 1));
    expect(applied.map((e) => [e.id, e.seq, e.type, e.session_id])).toEqual(log.map((e) => [e.id, e.seq, e.type, e.sessionId]));
    const queued = applied.filter((e) => e.seq > deliveredBeforeKill);
    console.log(`${log.length} events issued, ${deliveredBeforeKill} delivered before the kill, ${queued.length} queued across the restarts`);
    expect(queued.map((e) => `${e.session_id}:${e.type}`)).toEqual(
      expect.arrayContaining([
        "f-b:session_ended",
        "f-c:session_failed",
        "f-d:session_updated",
        "f-d:session_ended",
        "f-a:session_expired",
        "f-e:session_expired",
        "null:origin_offline",
        "null:origin_online",
      ]),
    );
    // Queued, not delivered early by some other path: none of it reached the origin before it was back.
    for (const e of queued) expect(e.received_at).toBeGreaterThanOrEqual(originBackAt);
  });

  it("on the wire: each event was acknowledged exactly once, batches in seq order, and the origin saw no duplicates", () => {
    const acked = relay.acknowledged();
    const ok = relay.deliveries.filter((d) => d.status === 200);
    const failed = relay.deliveries.filter((d) => d.status !== 200);
    console.log(`${ok.length} batches acknowledged, ${failed.length} attempts refused while the origin was down`);
    expect(relay.deliveries.filter((d) => d.status !== 200 && d.status !== 0)).toEqual([]);
    expect([...acked.keys()].sort()).toEqual(log.map((e) => e.id).sort());
    expect([...acked.values()].every((n) => n === 1)).toBe(true);
    expect(ok.reduce((sum, d) => sum + d.duplicates, 0)).toBe(0);
    const seqs = ok.flatMap((d) => d.seqs);
    expect(seqs).toEqual(log.map((e) => e.seq));
  });

  it("the origin's sessions end as the edge's did, each transition applied once", async () => {
    const expected: Record<string, { status: string; reason?: string | null; events: string[] }> = {
      "f-early": { status: "failed", reason: "agent_disconnected", events: ["session_online", "session_expired"] },
      "f-a": { status: "failed", reason: "agent_disconnected", events: ["session_online", "session_expired"] },
      "f-b": { status: "ended", events: ["session_online", "session_ended"] },
      "f-c": { status: "failed", events: ["session_online", "session_failed"] },
      "f-d": { status: "ended", events: ["session_online", "session_updated", "session_ended"] },
      "f-e": { status: "failed", reason: "agent_disconnected", events: ["session_online", "session_expired"] },
    };
    for (const [id, want] of Object.entries(expected)) {
      const { status, body } = await edge<{ session: { status: string; reason: string | null; timeline: { event: string }[] } }>("GET", `/api/sessions/${id}`);
      expect(status, id).toBe(200);
      expect(body.session.status, id).toBe(want.status);
      if (want.reason !== undefined) expect(body.session.reason, id).toBe(want.reason);
      expect(
        body.session.timeline.map((t) => t.event),
        id,
      ).toEqual(want.events);
    }
  });
});
