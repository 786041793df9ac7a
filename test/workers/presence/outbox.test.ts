// The outbox to the origin: signed ordered batches, retries with backoff, once-only acknowledgement, restarts, and reachability.
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from "jose";
import { runDurableObjectAlarm } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bodySha256 } from "../../../durable-objects/presence/outbox.ts";
import { presenceStub, reportOriginOutcome } from "../../../worker/routes/presence.ts";
import type { PresenceHub } from "../../../durable-objects/presence/hub.ts";
import { BASE, CALLER, TTL_MS, alarmOf, api, clock, fakeOrigin, hub, hubIdOf, restart, runDueAlarm, testEnv, watchHub } from "./helpers.ts";

let origin: ReturnType<typeof fakeOrigin>;
beforeEach(() => {
  clock.start();
  origin = fakeOrigin();
});
afterEach(() => {
  origin.restore();
  clock.stop();
});

/** Sessions that come online and exit at once: events, and nothing live (so no probes, only outbox alarms). */
async function exits(stub: DurableObjectStub<PresenceHub>, ids: string[]): Promise<void> {
  for (const id of ids) {
    await stub.heartbeat(CALLER, [{ id }]);
    await stub.end(CALLER, id, { exitCode: 0 });
  }
}

describe("delivery", () => {
  it("sends events in seq order as one signed batch whose assertion verifies against the published JWKS", async () => {
    const stub = hub();
    await exits(stub, ["a", "b", "c"]);
    expect(await runDueAlarm(stub)).toBe(true);
    expect(origin.state.deliveries).toHaveLength(1);
    const [delivery] = origin.state.deliveries;
    const hubId = hubIdOf(stub);
    expect(delivery!.events.map((e) => [e.id, e.seq, e.type, e.sessionId])).toEqual([
      [`${hubId}:1`, 1, "session_online", "a"],
      [`${hubId}:2`, 2, "session_ended", "a"],
      [`${hubId}:3`, 3, "session_online", "b"],
      [`${hubId}:4`, 4, "session_ended", "b"],
      [`${hubId}:5`, 5, "session_online", "c"],
      [`${hubId}:6`, 6, "session_ended", "c"],
    ]);
    expect(delivery!.events[1]).toMatchObject({ at: new Date(Date.now()).toISOString(), data: { status: "ended", alive: false } });

    const jwks = await (await api("/.well-known/jwks.json")).json<JSONWebKeySet>();
    const { payload, protectedHeader } = await jwtVerify(delivery!.assertion!, createLocalJWKSet(jwks), {
      issuer: BASE,
      audience: "origin",
      typ: "outpost-assertion+jwt",
      algorithms: ["ES256"],
    });
    expect(protectedHeader.kid).toBe(jwks.keys[0]!.kid);
    expect(payload).toMatchObject({ sub: "outpost-edge", email: "", role: "system", htm: "POST", htu: "/outpost/events" });
    expect(payload.body_sha256).toBe(await bodySha256(delivery!.body));
    // The hash is over the exact bytes: any change to the body breaks it.
    expect(payload.body_sha256).not.toBe(await bodySha256(delivery!.body.replace('"a"', '"z"')));
    expect(await stub.stats()).toMatchObject({ outboxDepth: 0, delivered: 6 });
  });

  it("retries with growing, jittered backoff while the origin answers 503, then delivers each event once, in order", async () => {
    const stub = hub();
    origin.state.events = 503;
    await exits(stub, ["a", "b"]);
    const delays: number[] = [];
    for (let attempt = 0; attempt < 9; attempt++) {
      const ran = await runDueAlarm(stub);
      expect(ran).toBe(true);
      const next = (await alarmOf(stub))!;
      delays.push(next - Date.now());
      clock.advance(next - Date.now());
    }
    expect(origin.state.deliveries).toHaveLength(0);
    // 1 s, 2 s, 4 s … each between half and all of its ceiling, never above 60 s.
    delays.forEach((d, i) => {
      const ceiling = Math.min(60_000, 1000 * 2 ** i);
      expect(d).toBeGreaterThanOrEqual(ceiling / 2);
      expect(d).toBeLessThanOrEqual(ceiling);
    });
    // Events made while the origin is down queue behind the others.
    await exits(stub, ["c"]);
    origin.state.events = 200;
    clock.advance((await alarmOf(stub))! - Date.now());
    expect(await runDueAlarm(stub)).toBe(true);
    const delivered = origin.eventsOf(hubIdOf(stub));
    expect(delivered.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(delivered.map((e) => e.sessionId)).toEqual(["a", "a", "b", "b", "c", "c"]);
    // Acknowledged once: nothing is sent again.
    expect(await alarmOf(stub)).toBeNull();
    await stub.reportOrigin(true);
    await runDueAlarm(stub);
    expect(origin.eventsOf(hubIdOf(stub)).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it("loses nothing across a restart: the queue is in SQLite and the alarm survives", async () => {
    let stub = hub();
    origin.state.events = 503;
    await exits(stub, ["a", "b"]);
    await runDueAlarm(stub);
    expect(await stub.stats()).toMatchObject({ outboxDepth: 4 });
    stub = await restart(stub);
    origin.state.events = 200;
    // A fresh instance has no backoff in memory: it tries again at once.
    expect(await alarmOf(stub)).not.toBeNull();
    clock.advance(Math.max(0, (await alarmOf(stub))! - Date.now()));
    await runDueAlarm(stub);
    expect(origin.eventsOf(hubIdOf(stub)).map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect((await stub.stats()).outboxDepth).toBe(0);
  });

  it("drops events older than 7 days, and counts them", async () => {
    const stub = hub();
    origin.state.events = 503;
    await exits(stub, ["a", "b"]);
    await runDueAlarm(stub);
    clock.advance(8 * 24 * 60 * 60 * 1000);
    await exits(stub, ["c"]);
    origin.state.events = 200;
    await runDurableObjectAlarm(stub);
    expect(origin.eventsOf(hubIdOf(stub)).map((e) => e.sessionId)).toEqual(["c", "c"]);
    expect(await stub.stats()).toMatchObject({ outboxDepth: 0, outboxDropped: 4 });
  });
});

describe("origin reachability", () => {
  it("probes /health every 30 s while a session is live; a failure is confirmed 2 s later before phones see origin_offline", async () => {
    const stub = hub();
    const socket = await watchHub(stub);
    await socket.next((m) => m.type === "snapshot");
    const t0 = Date.now();
    await stub.heartbeat(CALLER, [{ id: "s1" }]);
    await runDueAlarm(stub);
    const online = await socket.next((m) => (m.event as { type?: string } | undefined)?.type === "origin_online");
    expect(online.event).toMatchObject({ data: { online: true, state: "online", link: false, lastSeen: new Date(t0).toISOString() } });
    expect(origin.state.probes).toBe(1);
    // Keep the session alive; the next probe is due 30 s after the first.
    origin.state.health = 503;
    const seq = (await stub.stats()).lastSeq;
    for (let t = 1; t <= 30; t++) {
      clock.advance(1000);
      await stub.heartbeat(CALLER, [{ id: "s1" }]);
      await runDueAlarm(stub);
    }
    expect(origin.state.probes).toBe(2);
    // One failed probe changes nothing; the confirming one, 2 s later, does.
    expect((await stub.stats()).lastSeq).toBe(seq);
    expect((await stub.list()).origin.state).toBe("online");
    for (let t = 1; t <= 2; t++) {
      clock.advance(1000);
      await stub.heartbeat(CALLER, [{ id: "s1" }]);
      await runDueAlarm(stub);
    }
    expect(origin.state.probes).toBe(3);
    const offline = await socket.next((m) => (m.event as { type?: string } | undefined)?.type === "origin_offline");
    expect(offline.event).toMatchObject({ data: { online: false, state: "offline", lastSeen: new Date(t0).toISOString() } });
    expect((await stub.list()).origin).toEqual({ online: false, state: "offline", link: false, lastSeen: new Date(t0).toISOString() });
    socket.close();
  });

  it("the gateway's reports flip the state after two failures in a row (events only on changes) and retry the outbox at once", async () => {
    const stub = hub();
    origin.state.events = 503;
    await exits(stub, ["a"]);
    await runDueAlarm(stub); // fails: the origin is down, a retry is scheduled ~1 s out
    const retryAt = (await alarmOf(stub))!;
    expect(retryAt).toBeGreaterThan(Date.now());
    const seq = (await stub.stats()).lastSeq;
    await stub.reportOrigin(false);
    expect((await stub.stats()).lastSeq).toBe(seq);
    await stub.reportOrigin(false);
    expect((await stub.stats()).lastSeq).toBe(seq + 1);
    await stub.reportOrigin(false);
    expect((await stub.stats()).lastSeq).toBe(seq + 1);
    expect(await alarmOf(stub)).toBe(retryAt); // still backing off
    origin.state.events = 200;
    await stub.reportOrigin(true);
    await stub.reportOrigin(true);
    expect((await stub.stats()).lastSeq).toBe(seq + 2);
    expect(await alarmOf(stub)).toBe(Date.now());
    await runDueAlarm(stub);
    expect(origin.eventsOf(hubIdOf(stub)).map((e) => e.type)).toEqual(["session_online", "session_ended", "origin_offline", "origin_online"]);
  });

  it("nobody watching and nothing live: no probes and no alarm", async () => {
    const stub = hub();
    await exits(stub, ["a"]);
    await runDueAlarm(stub);
    expect(await alarmOf(stub)).toBeNull();
    const probes = origin.state.probes;
    clock.advance(TTL_MS * 100);
    expect(await runDueAlarm(stub)).toBe(false);
    expect(origin.state.probes).toBe(probes);
  });

  it("the gateway's helper calls the hub only when this isolate sees the origin change", async () => {
    const pending: Promise<unknown>[] = [];
    const ctx = { waitUntil: (p: Promise<unknown>) => void pending.push(p) };
    const stub = presenceStub(testEnv);
    for (const ok of [false, false, false, true, true, false]) reportOriginOutcome(testEnv, ctx, ok);
    expect(pending).toHaveLength(3);
    await Promise.all(pending);
    // false, true, false reached the hub: online, and the one failure since waits for its confirming probe.
    expect((await stub.list()).origin.state).toBe("online");
    const seq = (await stub.list()).seq;
    origin.state.health = 503;
    clock.advance(2000);
    expect(await runDueAlarm(stub)).toBe(true);
    expect(await stub.list()).toMatchObject({ seq: seq + 1, origin: { online: false, state: "offline" } });
    reportOriginOutcome(testEnv, ctx, true);
    await Promise.all(pending);
    expect(await stub.list()).toMatchObject({ seq: seq + 2, origin: { online: true, state: "online", lastSeen: new Date(Date.now()).toISOString() } });
  });
});
