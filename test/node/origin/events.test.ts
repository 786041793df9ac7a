// POST /outpost/events: the body hash, exactly-once application (duplicates, replays, out of order), crashes mid-batch.
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningOrigin } from "../../../origin/server.ts";
import { spawnOrigin } from "../../support/spawn-origin.ts";
import { api, assertion, EDGE_SUB, postEvents, presenceEvent, startTestOrigin, tempDir } from "./helpers.ts";

interface Session {
  id: string;
  status: string;
  reason: string | null;
  exitCode: number | null;
  name: string | null;
  hostname: string | null;
  timeline: { event: string; status: string; eventId?: string; reason?: string }[];
}

let origin: RunningOrigin;
beforeAll(async () => {
  origin = await startTestOrigin();
});
afterAll(() => origin?.close());

const session = async (base: string, id: string) => (await api<{ session: Session }>(base, "GET", `/api/sessions/${id}`)).body.session;
const at = (s: number) => new Date(Date.UTC(2030, 0, 1, 0, 0, s)).toISOString();
const storedEvents = () => origin.store.get("SELECT COUNT(*) AS n FROM edge_events")!.n as number;

describe("events are applied exactly once", () => {
  it("duplicates and out-of-order delivery leave one timeline entry per event and the newest status", async () => {
    const online = presenceEvent({
      seq: 11,
      type: "session_online",
      sessionId: "s1",
      at: at(1),
      data: { status: "working", name: "agent", hostname: "laptop", owner: "owner@example.com" },
    });
    const idle = presenceEvent({ seq: 12, type: "session_updated", sessionId: "s1", at: at(2), data: { status: "idle", name: "agent" } });
    const ended = presenceEvent({ seq: 13, type: "session_ended", sessionId: "s1", at: at(3), data: { status: "ended", reason: "done", exitCode: 0 } });

    let res = await postEvents(origin.url, [ended]);
    expect(await res.json()).toEqual({ acked: [ended.id], applied: 1, duplicates: 0 });
    expect((await session(origin.url, "s1")).status).toBe("ended");
    res = await postEvents(origin.url, [idle, online]);
    expect(await res.json()).toEqual({ acked: [idle.id, online.id], applied: 2, duplicates: 0 });
    // Older events joined the timeline but did not bring the session back to life.
    res = await postEvents(origin.url, [online, idle, ended, ended]);
    expect(await res.json()).toEqual({ acked: [online.id, idle.id, ended.id, ended.id], applied: 0, duplicates: 4 });

    const s = await session(origin.url, "s1");
    expect(s).toMatchObject({ status: "ended", reason: "done", exitCode: 0, name: "agent", hostname: "laptop" });
    expect(s.timeline.map((e) => [e.event, e.eventId])).toEqual([
      ["session_online", online.id],
      ["session_updated", idle.id],
      ["session_ended", ended.id],
    ]);
  });

  it("an expiry fails the session with agent_disconnected; a later heartbeat brings it back, even if it arrives first", async () => {
    const expired = presenceEvent({ seq: 21, type: "session_expired", sessionId: "s2", at: at(10), data: { status: "failed", reason: "agent_disconnected" } });
    const back = presenceEvent({ seq: 22, type: "session_online", sessionId: "s2", at: at(11), data: { status: "working" } });
    await postEvents(origin.url, [presenceEvent({ seq: 20, type: "session_online", sessionId: "s2", at: at(9) })]);
    await postEvents(origin.url, [expired]);
    expect(await session(origin.url, "s2")).toMatchObject({ status: "failed", reason: "agent_disconnected" });
    await postEvents(origin.url, [back]);
    expect(await session(origin.url, "s2")).toMatchObject({ status: "working", reason: null });

    // The same two in the other order, for a third session.
    const e3 = { ...expired, id: "origin:31", seq: 31, sessionId: "s3" };
    const b3 = { ...back, id: "origin:32", seq: 32, sessionId: "s3" };
    await postEvents(origin.url, [b3]);
    await postEvents(origin.url, [e3]);
    const s3 = await session(origin.url, "s3");
    expect(s3.status).toBe("working");
    expect(s3.timeline.map((e) => e.event)).toEqual(["session_expired", "session_online"]);
  });

  it("a failure keeps its reason and exit code; origin online/offline events are stored without a session", async () => {
    await postEvents(origin.url, [
      presenceEvent({ seq: 41, type: "session_online", sessionId: "s4" }),
      presenceEvent({ seq: 42, type: "session_failed", sessionId: "s4", data: { reason: "crashed", exitCode: 3 } }),
      presenceEvent({ seq: 43, type: "origin_online", sessionId: null, data: { online: true } }),
    ]);
    expect(await session(origin.url, "s4")).toMatchObject({ status: "failed", reason: "crashed", exitCode: 3 });
    expect(origin.store.get("SELECT type FROM edge_events WHERE id = 'origin:43'")?.type).toBe("origin_online");
  });
});

describe("only the edge's signed body is accepted", () => {
  const batch = () => [presenceEvent({ seq: 900 + Math.floor(Math.random() * 1000), type: "session_online", sessionId: "s-guard" })];

  it("a body that differs from the signed hash is 401 and stores nothing", async () => {
    const before = storedEvents();
    const events = batch();
    const signedBody = JSON.stringify({ events });
    const token = await assertion("POST", "/outpost/events", { sub: EDGE_SUB, role: "system", email: "", body: signedBody });
    const tampered = JSON.stringify({ events: [{ ...events[0], sessionId: "s-evil" }] });
    const res = await fetch(`${origin.url}/outpost/events`, {
      method: "POST",
      headers: { "content-type": "application/json", "outpost-assertion": token },
      body: tampered,
    });
    expect(res.status).toBe(401);
    expect(storedEvents()).toBe(before);
  });

  it("an assertion without body_sha256 is 401; one for a user is 403", async () => {
    const body = JSON.stringify({ events: batch() });
    const unsigned = await assertion("POST", "/outpost/events", { sub: EDGE_SUB, role: "system" });
    const res = await fetch(`${origin.url}/outpost/events`, {
      method: "POST",
      headers: { "content-type": "application/json", "outpost-assertion": unsigned },
      body,
    });
    expect(res.status).toBe(401);
    const user = await postEvents(origin.url, batch(), { sub: "outpost:owner@example.com", role: "owner" });
    expect(user.status).toBe(403);
  });

  it("one malformed event refuses the whole batch with 400; nothing of it is stored", async () => {
    const before = storedEvents();
    const res = await postEvents(origin.url, [...batch(), { id: "origin:x", seq: -1, type: "session_online", sessionId: "s", at: "now", data: {} }]);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string; message: string } }).error.message).toMatch(/^events\[1\]/);
    expect((await postEvents(origin.url, [])).status).toBe(200);
    expect(storedEvents()).toBe(before);
  });
});

describe("a crash mid-batch loses nothing", () => {
  it("a failure while storing rolls the batch back (500, nothing acknowledged); the resend applies all of it", async () => {
    const events = [51, 52, 53, 54].map((seq) => presenceEvent({ seq, type: seq === 54 ? "session_ended" : "session_updated", sessionId: "s5" }));
    const store = origin.store;
    const run = store.run.bind(store);
    let inserts = 0;
    store.run = (sql, ...params) => {
      if (sql.startsWith("INSERT INTO edge_events") && ++inserts === 3) throw new Error("disk on fire");
      return run(sql, ...params);
    };
    try {
      const res = await postEvents(origin.url, events);
      expect(res.status).toBe(500);
    } finally {
      store.run = run;
    }
    expect((await api(origin.url, "GET", "/api/sessions/s5")).status).toBe(404);
    const again = await postEvents(origin.url, events);
    expect(await again.json()).toMatchObject({ applied: 4, duplicates: 0 });
    expect((await session(origin.url, "s5")).status).toBe("ended");
  });

  it("the origin process killed after storing (its answer lost) and restarted: the resend is skipped, the rest applied", async () => {
    const dir = tempDir();
    const first = await spawnOrigin(["--data-dir", dir]);
    const port = new URL(first.url).port;
    try {
      const a = [61, 62].map((seq) => presenceEvent({ seq, type: "session_updated", sessionId: "s6", data: { status: seq === 61 ? "working" : "idle" } }));
      const b = [63].map((seq) => presenceEvent({ seq, type: "session_ended", sessionId: "s6" }));
      expect((await postEvents(first.url, a)).status).toBe(200);
      first.child.kill("SIGKILL");
      await first.stop();
      expect((await postEvents(first.url, b).catch(() => null))?.status).toBeUndefined();
      const second = await spawnOrigin(["--data-dir", dir, "--port", port]);
      try {
        // The edge never saw the ack for `a`: it resends everything queued, in order.
        const res = await postEvents(second.url, [...a, ...b]);
        expect(await res.json()).toMatchObject({ applied: 1, duplicates: 2 });
        const s = await session(second.url, "s6");
        expect(s.status).toBe("ended");
        expect(s.timeline.map((e) => e.eventId)).toEqual(["origin:61", "origin:62", "origin:63"]);
      } finally {
        await second.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
