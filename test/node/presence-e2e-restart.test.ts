// workerd restarted with persisted state (TTL 2 s): sessions, the hub's alarm and the outbox for a stopped origin all survive it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MEMBER, OWNER } from "../support/identity.ts";
import { callEdge, originEvents, sleep, subscribe, until, type PresenceMessage as Message } from "../support/presence.ts";
import { spawnOrigin, trustEdgeEnv, type SpawnedOrigin } from "../support/spawn-origin.ts";
import { startStack, type Stack } from "../support/stack.ts";

const TTL_MS = 2_000;

let stack: Stack;
let persistDir: string;
let originDir: string;
let restartedOrigin: SpawnedOrigin | null = null;
let agent: string;
let watcher: string;
/** Every event the first subscriber saw before the restart. */
let before: Message[] = [];
/** The last seq the origin had applied when it was stopped. */
let deliveredBeforeStop = 0;
let quietExpiresAt = 0;
let restartStartedAt = 0;
let workerStartedAt = 0;
let restartReadyAt = 0;

/** What the origin has applied, in the order it stored it. */
const delivered = () => originEvents(originDir);
const edge = <T = Record<string, unknown>>(method: string, path: string, body?: unknown, token = agent) =>
  callEdge<T>(stack.edgeUrl, token, method, path, body);
const collect = (query = "") => subscribe(stack.edgeUrl, watcher, query);

beforeAll(async () => {
  persistDir = mkdtempSync(join(tmpdir(), "outpost-edge-state-"));
  originDir = mkdtempSync(join(tmpdir(), "outpost-origin-"));
  stack = await startStack({
    persistTo: persistDir,
    originArgs: ["--data-dir", originDir],
    vars: { HEARTBEAT_TTL_SECONDS: "2", HEARTBEAT_INTERVAL_SECONDS: "1" },
  });
  agent = await stack.mintToken(OWNER);
  watcher = await stack.mintToken(MEMBER);
  const sub = await collect();

  // r-early reaches the origin while it is up; the origin is stopped only once the outbox is empty (nothing in flight).
  expect((await edge("POST", "/api/heartbeat/r-early", { name: "early", hostname: "laptop", pid: 101 })).status).toBe(200);
  const issued = (await edge<{ seq: number }>("GET", "/api/presence")).body.seq;
  deliveredBeforeStop = await until(() => (delivered().at(-1)?.seq === issued ? issued : undefined), 10_000, "r-early at the origin");
  expect(delivered().map((e) => e.session_id)).toContain("r-early");

  // The origin goes away; everything from here on waits in the hub's outbox.
  const port = new URL(stack.originUrl).port;
  stack.origin!.child.kill("SIGKILL");
  await stack.origin!.stop();
  await sleep(1_100); // the 1/s heartbeat limit for r-early
  expect((await edge("POST", "/api/heartbeat/r-early", { status: "idle" })).status).toBe(200);
  expect((await edge("POST", "/api/heartbeat/r-ended", { name: "ended", pid: 102 })).status).toBe(200);
  expect((await edge("DELETE", "/api/heartbeat/r-ended", { exitCode: 0 })).status).toBe(200);
  const quiet = await edge<{ expiresAt: string }>("POST", "/api/heartbeat/r-quiet", { name: "quiet", hostname: "laptop", pid: 103 });
  expect(quiet.status).toBe(200);
  quietExpiresAt = Date.parse(quiet.body.expiresAt);
  const seqNow = (await edge<{ seq: number }>("GET", "/api/presence")).body.seq;
  await until(() => (sub.messages.at(-1)?.seq === seqNow ? true : undefined), 5_000, "the subscriber to catch up");
  before = sub.messages.filter((m) => m.type === "event");
  sub.ws.terminate();

  // Restart workerd with its state on disk; the origin comes back (same port, same database) while the edge is down.
  restartStartedAt = Date.now();
  await stack.restartWorker(async () => {
    restartedOrigin = await spawnOrigin(["--data-dir", originDir, "--port", port], trustEdgeEnv());
    // Down for longer than r-quiet had left, so its expiry falls due while no workerd runs.
    await sleep(Math.max(0, quietExpiresAt + 500 - Date.now()));
    workerStartedAt = Date.now();
  });
  const startResolvedAt = Date.now();
  // The restart counts as done when the new Worker answers; /health does not touch the hub, so it cannot wake it.
  expect((await fetch(`${stack.edgeUrl}/health`)).status).toBe(200);
  restartReadyAt = Date.now();
  console.log(
    `restart: down ${workerStartedAt - restartStartedAt} ms, startWorker ${startResolvedAt - workerStartedAt} ms, first /health answered ` +
      `${restartReadyAt - startResolvedAt} ms later; r-quiet's expiresAt was ${quietExpiresAt - restartStartedAt} ms after the stop began`,
  );
}, 90_000);

afterAll(async () => {
  await stack?.stop();
  await restartedOrigin?.stop();
  for (const dir of [persistDir, originDir]) if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("after workerd restarts with persisted state", () => {
  it("the hub wakes on its own alarm: the queued events reach the origin once each, in seq order, then r-quiet expires", async () => {
    // Nothing has reached the hub since the restart (only /health): just the persisted alarm can have woken it.
    const all = await until(
      () => {
        const rows = delivered();
        return rows.some((e) => e.session_id === "r-quiet" && e.type === "session_expired") ? rows : undefined;
      },
      TTL_MS + 12_000,
      "r-quiet's expiry at the origin",
    );
    const seqs = all.map((e) => e.seq);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));

    const queued = all.filter((e) => e.seq > deliveredBeforeStop && e.seq <= before.at(-1)!.seq);
    expect(queued.map((e) => [e.seq, e.type, e.session_id])).toEqual(
      before.filter((m) => m.seq > deliveredBeforeStop).map((m) => [m.seq, m.event!.type, m.event!.sessionId]),
    );
    expect(queued.map((e) => `${e.session_id}:${e.type}`)).toEqual(
      expect.arrayContaining(["r-early:session_updated", "r-ended:session_online", "r-ended:session_ended", "r-quiet:session_online"]),
    );
    // Delivered by the new workerd: the origin came back only after the old one had stopped.
    for (const e of queued) expect(e.received_at).toBeGreaterThanOrEqual(workerStartedAt);

    // Its expiresAt passed while the edge was down; a cold start defers expiry by one TTL from the wake-up, no more.
    const expiredAt = all.find((e) => e.session_id === "r-quiet" && e.type === "session_expired")!.at;
    console.log(
      `r-quiet expired ${expiredAt - restartReadyAt} ms after the restarted Worker was ready (${expiredAt - quietExpiresAt} ms after its own expiresAt)`,
    );
    expect(expiredAt).toBeGreaterThanOrEqual(quietExpiresAt);
    expect(expiredAt).toBeGreaterThanOrEqual(workerStartedAt + TTL_MS);
    expect(expiredAt).toBeLessThanOrEqual(restartReadyAt + TTL_MS + 1_000);
  }, 30_000);

  it("sessions created before the restart are still listed, with their details", async () => {
    const list = await edge<{
      seq: number;
      sessions: { id: string; status: string; reason: string | null; name: string | null; pid: number | null; owner: string }[];
    }>("GET", "/api/presence");
    expect(list.status).toBe(200);
    const byId = Object.fromEntries(list.body.sessions.map((s) => [s.id, s]));
    expect(byId["r-ended"]).toMatchObject({ status: "ended", name: "ended", pid: 102, owner: OWNER });
    expect(byId["r-quiet"]).toMatchObject({ status: "failed", reason: "agent_disconnected", name: "quiet", pid: 103 });
    expect(byId["r-early"]).toMatchObject({ status: "failed", reason: "agent_disconnected", name: "early", pid: 101 });
    // The same r-early carries on with a heartbeat: its stored history from before the restart is still there.
    expect((await edge("POST", "/api/heartbeat/r-early", {})).status).toBe(200);
    const early = await edge<{ alive: boolean; data: { status: string; timeline: { event: string }[] } }>("GET", "/api/heartbeat/r-early");
    expect(early.body.alive).toBe(true);
    expect(early.body.data.timeline.map((t) => t.event)).toEqual(["online", "idle", "expired", "reconnected"]);
  });

  it("the origin applied each queued event once (as its timelines show, read through the edge)", async () => {
    const timeline = async (id: string) =>
      (await edge<{ session: { status: string; timeline: { event: string; eventId: string }[] } }>("GET", `/api/sessions/${id}`)).body.session;
    const ended = await timeline("r-ended");
    expect(ended.status).toBe("ended");
    expect(ended.timeline.map((t) => t.event)).toEqual(["session_online", "session_ended"]);
    const quiet = await timeline("r-quiet");
    expect(quiet).toMatchObject({ status: "failed", reason: "agent_disconnected" });
    expect(quiet.timeline.map((t) => t.event)).toEqual(["session_online", "session_expired"]);
    const ids = [...ended.timeline, ...quiet.timeline].map((t) => t.eventId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("a subscriber resuming from its last pre-restart seq gets exactly what happened since, in order", async () => {
    const last = before.at(-1)!.seq;
    const upTo = (await edge<{ seq: number }>("GET", "/api/presence")).body.seq;
    const sub = await collect(`?after=${last}`);
    try {
      await until(() => (sub.messages.some((m) => m.seq >= upTo) ? true : undefined), 5_000, "the replay");
      expect(sub.messages.map((m) => [m.type, m.seq])).toEqual(Array.from({ length: upTo - last }, (_, i) => ["event", last + 1 + i]));
      const types = sub.messages.map((m) => `${m.event!.sessionId}:${m.event!.type}`);
      expect(types).toEqual(expect.arrayContaining(["r-quiet:session_expired", "r-early:session_expired", "r-early:session_online"]));
    } finally {
      sub.ws.terminate();
    }
  });
});
