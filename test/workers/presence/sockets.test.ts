// Phones' WebSocket: snapshot first, live events after, ping/pong, tickets, and resuming from a seq.
import { runInDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { PresenceHub } from "../../../durable-objects/presence/hub.ts";
import { CALLER, api, as, clock, expectError, fakeOrigin, hub, runDueAlarm, socketOf, tokenFor, unique, watchHub } from "./helpers.ts";

let origin: ReturnType<typeof fakeOrigin>;
beforeEach(() => {
  clock.start();
  origin = fakeOrigin();
});
afterEach(() => {
  origin.restore();
  clock.stop();
});

type Msg = Record<string, unknown> & { event?: { type: string; seq: number; sessionId: string | null; data: Record<string, unknown> } };
const upgrade = async (query = "", headers: Record<string, string> = {}) =>
  api(`/api/presence/ws${query}`, { headers: { upgrade: "websocket", authorization: `Bearer ${await tokenFor("viewer")}`, ...headers } });

describe("through the Worker", () => {
  it("a viewer gets a snapshot first, then live events for heartbeats and exits", async () => {
    const id = unique("live");
    const socket = socketOf(await upgrade());
    const snapshot = (await socket.next()) as Msg;
    expect(snapshot).toMatchObject({ type: "snapshot", seq: expect.any(Number), sessions: expect.any(Array), origin: { online: expect.any(Boolean) } });
    expect(snapshot.reset).toBeUndefined();
    await api(`/api/heartbeat/${id}`, await as("member", "POST", { name: "job" }));
    const online = (await socket.next((m) => (m as Msg).event?.sessionId === id)) as Msg;
    expect(online).toMatchObject({ type: "event", event: { type: "session_online", sessionId: id, data: { status: "working", name: "job", alive: true } } });
    expect(online.seq).toBe(online.event!.seq);
    expect(online.seq).toBeGreaterThan(snapshot.seq as number);
    clock.advance(1000);
    await api(`/api/heartbeat/${id}`, await as("member", "POST", { status: "idle" }));
    await api(`/api/heartbeat/${id}`, await as("member", "DELETE", { exitCode: 2 }));
    const later = [
      (await socket.next((m) => (m as Msg).event?.sessionId === id)) as Msg,
      (await socket.next((m) => (m as Msg).event?.sessionId === id)) as Msg,
    ];
    expect(later.map((m) => m.event!.type)).toEqual(["session_updated", "session_failed"]);
    expect(later[1]!.event!.data).toMatchObject({ status: "failed", exitCode: 2, alive: false });
    socket.close();
  });

  it("answers ping with pong", async () => {
    const socket = socketOf(await upgrade());
    await socket.next((m) => m.type === "snapshot");
    socket.ws.send("ping");
    expect(await socket.next((m) => m.raw === "pong")).toEqual({ raw: "pong" });
    socket.close();
  });

  it("opens with a single-use ticket in ?ticket=", async () => {
    const res = await api("/auth/ws-ticket", await as("viewer", "POST", { path: "/api/presence/ws" }));
    expect(res.status).toBe(200);
    const { ticket } = await res.json<{ ticket: string }>();
    const first = await api(`/api/presence/ws?ticket=${ticket}`, { headers: { upgrade: "websocket" } });
    const socket = socketOf(first);
    expect(await socket.next()).toMatchObject({ type: "snapshot" });
    socket.close();
    await expectError(await api(`/api/presence/ws?ticket=${ticket}`, { headers: { upgrade: "websocket" } }), 401, "AUTH_INVALID");
  });

  it("refuses a plain GET (426), a bad ?after= (400) and a foreign Origin (403)", async () => {
    const plain = await api("/api/presence/ws", await as("member", "GET"));
    await expectError(plain, 426, "UPGRADE_REQUIRED");
    await expectError(await upgrade("?after=abc"), 400, "BAD_REQUEST");
    await expectError(await upgrade("?after=-1"), 400, "BAD_REQUEST");
    await expectError(await upgrade("", { origin: "https://evil.example" }), 403, "FORBIDDEN_ORIGIN");
    const allowed = socketOf(await upgrade("", { origin: "https://outpost.example.com" }));
    allowed.close();
  });
});

/** Makes `n` events on a hub: sessions coming online. */
async function events(stub: DurableObjectStub<PresenceHub>, n: number, prefix = "e"): Promise<void> {
  for (let i = 0; i < n; i++) await stub.heartbeat(CALLER, [{ id: `${prefix}${i}-${unique("s")}` }]);
}

describe("resume", () => {
  it("from a seq still in the log: only the missed events, in order, then live ones", async () => {
    const stub = hub();
    await events(stub, 5);
    const socket = await watchHub(stub, 2);
    const missed = [await socket.next(), await socket.next(), await socket.next()] as Msg[];
    expect(missed.map((m) => [m.type, m.seq])).toEqual([
      ["event", 3],
      ["event", 4],
      ["event", 5],
    ]);
    await events(stub, 1, "live");
    expect(((await socket.next()) as Msg).seq).toBe(6);
    expect(socket.messages.some((m) => m.type === "snapshot")).toBe(false);
    socket.close();
  });

  it("from the latest seq: nothing until the next event", async () => {
    const stub = hub();
    await events(stub, 3);
    const socket = await watchHub(stub, 3);
    await events(stub, 1);
    expect(await socket.next()).toMatchObject({ type: "event", seq: 4 });
    expect(socket.messages).toHaveLength(1);
    socket.close();
  });

  it("from before the last 24 hours: a fresh snapshot with reset:true", async () => {
    const stub = hub();
    await events(stub, 3);
    clock.advance(25 * 60 * 60 * 1000);
    await events(stub, 2, "new");
    const socket = await watchHub(stub, 1);
    const first = (await socket.next()) as Msg;
    expect(first).toMatchObject({ type: "snapshot", reset: true, seq: 5 });
    expect((first.sessions as unknown[]).length).toBe(5);
    // The last day is still resumable.
    const again = await watchHub(stub, 3);
    expect(((await again.next()) as Msg).seq).toBe(4);
    socket.close();
    again.close();
  });

  it("from before the last 10,000 events: reset:true; from within them: the missed events", async () => {
    const stub = hub();
    // Origin reports are the quickest way to fill the log: up, then down after two failures (debounced), 2 events in 3.
    await runInDurableObject(stub, async (instance: PresenceHub) => {
      for (let i = 0; i < 15_007; i++) await instance.reportOrigin(i % 3 === 0);
    });
    const old = await watchHub(stub, 4);
    expect(await old.next()).toMatchObject({ type: "snapshot", reset: true, seq: 10_005 });
    const recent = await watchHub(stub, 10_000);
    const got = [await recent.next(), await recent.next()] as Msg[];
    expect(got.map((m) => m.seq)).toEqual([10_001, 10_002]);
    old.close();
    recent.close();
  }, 30_000);

  it("from a seq this hub never issued: reset:true", async () => {
    const stub = hub();
    await events(stub, 2);
    const socket = await watchHub(stub, 99);
    expect(await socket.next()).toMatchObject({ type: "snapshot", reset: true, seq: 2 });
    socket.close();
  });
});

describe("credentials", () => {
  it("a socket whose credential has expired is closed at the next event instead of being sent it", async () => {
    const stub = hub();
    const socket = await watchHub(stub, undefined, Math.floor(Date.now() / 1000) + 60);
    await socket.next((m) => m.type === "snapshot");
    const closed = new Promise<number>((resolve) => socket.ws.addEventListener("close", (e) => resolve(e.code)));
    clock.advance(61_000);
    await events(stub, 1);
    expect(await closed).toBe(4401);
    expect(socket.messages.filter((m) => m.type === "event")).toHaveLength(0);
  });
});

describe("sockets outliving their credential", () => {
  /** Opens a socket straight on a hub with the given watcher, and records how it closes. */
  async function watch(stub: DurableObjectStub<PresenceHub>, watcher: Record<string, unknown>) {
    const res = await stub.fetch("https://presence.internal/ws", {
      headers: { upgrade: "websocket", "x-outpost-watcher": JSON.stringify({ sub: CALLER.sub, ...watcher }) },
    });
    const socket = socketOf(res);
    const closed = new Promise<{ code: number; reason: string }>((resolve) => {
      socket.ws.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason }));
    });
    await socket.next((m) => m.type === "snapshot");
    return { socket, closed };
  }

  it("closes a socket whose token expired, and one whose device is gone, at the hub's next alarm; others stay open", async () => {
    const stub = hub();
    const now = Math.floor(Date.now() / 1000);
    const expiring = await watch(stub, { exp: now + 20 });
    const revoked = await watch(stub, { exp: now + 3600, deviceId: "dev_no_such_device" });
    const fine = await watch(stub, { exp: now + 3600 });
    // Past the token's expiry and the next probe, when the alarm also sweeps the sockets.
    clock.advance(31_000);
    expect(await runDueAlarm(stub)).toBe(true);
    expect(await expiring.closed).toEqual({ code: 4401, reason: "session expired" });
    expect(await revoked.closed).toEqual({ code: 4401, reason: "session revoked" });
    expect(await runInDurableObject(stub, (_hub, state) => state.getWebSockets().length)).toBe(1);
    fine.socket.close();
  });
});
