// The origin's link and the one reachability state: link up and down, its TTL, probe failures debounced, unreachable,
// the outbox flushed at link-up, who may open a link, its listing with the devices, and revocation closing it.
import { runInDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { PresenceHub } from "../../../durable-objects/presence/hub.ts";
import { ORIGIN_LINK_TTL_MS } from "../../../shared/api-types.ts";
import { deviceLogin } from "../auth/helpers.ts";
import {
  CALLER,
  api,
  as,
  alarmOf,
  clock,
  expectError,
  fakeOrigin,
  hub,
  hubIdOf,
  restart,
  runDueAlarm,
  socketOf,
  tokenFor,
  watchHub,
  type Socket,
} from "./helpers.ts";

let origin: ReturnType<typeof fakeOrigin>;
beforeEach(() => {
  clock.start();
  origin = fakeOrigin();
});
afterEach(() => {
  origin.restore();
  clock.stop();
});

type Event = { type?: string; data?: Record<string, unknown> };
const eventOf = (m: Record<string, unknown>) => (m.event ?? {}) as Event;
const isOrigin = (m: Record<string, unknown>) => eventOf(m).type?.startsWith("origin_") === true;

/** Opens a link straight on a hub, as the Worker would after checking the credential; records how it closes. */
async function linkOn(stub: DurableObjectStub<PresenceHub>, who: Record<string, unknown> = {}) {
  const res = await stub.fetch("https://presence.internal/origin", {
    headers: {
      upgrade: "websocket",
      "x-outpost-watcher": JSON.stringify({ ...CALLER, exp: Math.floor(Date.now() / 1000) + 3600, deviceId: null, role: "member", ...who }),
    },
  });
  const socket = socketOf(res);
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    socket.ws.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason }));
  });
  return { socket, closed };
}

/**
 * Records a ping on every open link at the test clock's time. The runtime answers real pings and stamps them with
 * real time, which the test clock (far ahead of it) does not move; the real-time test below sends real ones.
 */
function pingAll(stub: DurableObjectStub<PresenceHub>): Promise<void> {
  return runInDurableObject(stub, (_hub, state) => {
    for (const ws of state.getWebSockets("origin-link")) ws.serializeAttachment({ ...ws.deserializeAttachment(), seenAt: Date.now() });
  });
}

/** Runs what is due now (the probe, deliveries) until nothing is. */
async function settle(stub: DurableObjectStub<PresenceHub>) {
  for (let i = 0; i < 10 && (await runDueAlarm(stub)); i++);
}

/** The origin events a watcher received, as [type, state, link]. */
function originEvents(socket: Socket): [string, unknown, unknown][] {
  return socket.messages.filter(isOrigin).map((m) => [eventOf(m).type!, eventOf(m).data?.state, eventOf(m).data?.link]);
}

async function watching(stub: DurableObjectStub<PresenceHub>): Promise<Socket> {
  const socket = await watchHub(stub);
  await socket.next((m) => m.type === "snapshot");
  return socket;
}

describe("link up and down", () => {
  it("a link coming up is origin_online with link:true at once; closing with 1001 (going away) is origin_offline at once", async () => {
    const stub = hub();
    const phone = await watching(stub);
    const t0 = Date.now();
    const { socket } = await linkOn(stub);
    const up = await phone.next(isOrigin);
    expect(eventOf(up)).toMatchObject({ type: "origin_online", data: { online: true, state: "online", link: true, lastSeen: new Date(t0).toISOString() } });
    expect((await stub.list()).origin).toEqual({ online: true, state: "online", link: true, lastSeen: new Date(t0).toISOString() });
    expect((await stub.stats()).links).toBe(1);
    clock.advance(1000);
    await pingAll(stub);
    socket.ws.close(1001, "origin stopping");
    const down = await phone.next(isOrigin);
    expect(eventOf(down)).toMatchObject({
      type: "origin_offline",
      data: { online: false, state: "offline", link: false, lastSeen: new Date(t0 + 1000).toISOString() },
    });
    phone.close();
  });

  it("a link that falls silent is closed with 4408 and shows offline exactly one TTL after its last ping", async () => {
    const stub = hub();
    const phone = await watching(stub);
    const { closed } = await linkOn(stub);
    await phone.next(isOrigin);
    await settle(stub);
    clock.advance(1000);
    await pingAll(stub);
    const lastPing = Date.now();
    // The alarm waits for the moment the link would time out (or an earlier probe), never later.
    const at = (await alarmOf(stub))!;
    expect(at).toBeLessThanOrEqual(lastPing + ORIGIN_LINK_TTL_MS);
    clock.advance(ORIGIN_LINK_TTL_MS - 1);
    await settle(stub);
    expect((await stub.list()).origin.state).toBe("online");
    expect(await alarmOf(stub)).toBe(lastPing + ORIGIN_LINK_TTL_MS);
    clock.advance(1);
    expect(await runDueAlarm(stub)).toBe(true);
    const down = await phone.next((m) => eventOf(m).type === "origin_offline");
    expect(eventOf(down).data).toMatchObject({ state: "offline", link: false, lastSeen: new Date(lastPing).toISOString() });
    expect(await closed).toEqual({ code: 4408, reason: "no ping within the link's TTL" });
    phone.close();
  });

  it("a link dropped and replaced within its TTL (a refreshed token) changes nothing; pings keep the new one up", async () => {
    const stub = hub();
    const phone = await watching(stub);
    const first = await linkOn(stub);
    await phone.next(isOrigin);
    clock.advance(500);
    first.socket.ws.close(4401, "session expired");
    await first.closed;
    clock.advance(200);
    const second = await linkOn(stub);
    for (let i = 0; i < 10; i++) {
      clock.advance(1000);
      await pingAll(stub);
      await settle(stub);
    }
    expect(originEvents(phone)).toEqual([["origin_online", "online", true]]);
    expect((await stub.list()).origin).toMatchObject({ state: "online", link: true });
    second.socket.ws.close(1001, "bye");
    await phone.next((m) => eventOf(m).type === "origin_offline");
    phone.close();
  });

  it("a kill (closed without goodbye) shows offline when the TTL runs out; the link coming back is online again", async () => {
    const stub = hub();
    // A killed origin does not answer the probe either.
    origin.state.health = 503;
    const phone = await watching(stub);
    const first = await linkOn(stub);
    await settle(stub);
    first.socket.ws.close(1000, "gone");
    await first.closed;
    expect((await stub.list()).origin.state).toBe("online");
    clock.advance(ORIGIN_LINK_TTL_MS);
    await settle(stub);
    expect((await stub.list()).origin.state).toBe("offline");
    await linkOn(stub);
    await phone.next((m) => eventOf(m).type === "origin_online" && (m.seq as number) > 2);
    expect(originEvents(phone)).toEqual([
      ["origin_online", "online", true],
      ["origin_offline", "offline", false],
      ["origin_online", "online", true],
    ]);
    phone.close();
  });

  it("nobody watching: the link costs no alarm, and a silent one is settled when a phone next looks", async () => {
    const stub = hub();
    const { closed } = await linkOn(stub);
    await settle(stub);
    // The outbox delivered origin_online; with only a link open, nothing more is scheduled.
    expect(await alarmOf(stub)).toBeNull();
    clock.advance(60_000);
    const phone = await watchHub(stub);
    const snapshot = await phone.next((m) => m.type === "snapshot");
    expect(snapshot.origin).toMatchObject({ online: false, state: "offline", link: false });
    expect(await closed).toMatchObject({ code: 4408 });
    phone.close();
  });
});

describe("a restarted hub", () => {
  it("keeps the state; a link that was up counts for one TTL, so reconnecting at once shows nothing, and not coming back is offline", async () => {
    let stub = hub();
    await linkOn(stub);
    await settle(stub);
    // A deploy: the hub starts afresh and every socket is dropped.
    stub = await restart(stub);
    let phone = await watchHub(stub);
    expect((await phone.next((m) => m.type === "snapshot")).origin).toMatchObject({ state: "online", link: true });
    clock.advance(500);
    await linkOn(stub);
    clock.advance(ORIGIN_LINK_TTL_MS);
    await pingAll(stub);
    await settle(stub);
    expect(originEvents(phone)).toEqual([]);
    phone.close();

    stub = await restart(stub);
    origin.state.health = 503;
    phone = await watchHub(stub);
    await phone.next((m) => m.type === "snapshot");
    clock.advance(ORIGIN_LINK_TTL_MS);
    await settle(stub);
    expect(originEvents(phone)).toEqual([["origin_offline", "offline", false]]);
    phone.close();
  });
});

describe("the probe beside the link", () => {
  it("with the link up, one failed probe changes nothing; the second, 2 s later, is origin_unreachable; a success is online again", async () => {
    const stub = hub();
    origin.state.health = 503;
    const phone = await watching(stub);
    await linkOn(stub);
    await phone.next(isOrigin);
    // Probed at once on link-up: the first failure.
    expect(await runDueAlarm(stub)).toBe(true);
    expect(origin.state.probes).toBe(1);
    expect((await stub.list()).origin.state).toBe("online");
    clock.advance(2000);
    await pingAll(stub);
    expect(await runDueAlarm(stub)).toBe(true);
    expect(origin.state.probes).toBe(2);
    const bad = await phone.next(isOrigin);
    expect(eventOf(bad)).toMatchObject({ type: "origin_unreachable", data: { online: false, state: "unreachable", link: true } });
    // A proxied request that reached the origin says the tunnel works again.
    await stub.reportOrigin(true);
    expect(eventOf(await phone.next(isOrigin))).toMatchObject({ type: "origin_online", data: { state: "online", link: true } });
    expect(originEvents(phone)).toEqual([
      ["origin_online", "online", true],
      ["origin_unreachable", "unreachable", true],
      ["origin_online", "online", true],
    ]);
    phone.close();
  });

  it("a link that stopped pinging (closed and lingering, or frozen) is never called unreachable: it goes offline at its TTL", async () => {
    const stub = hub();
    origin.state.health = 503;
    const phone = await watching(stub);
    const killed = await linkOn(stub);
    const frozen = await linkOn(stub);
    await phone.next(isOrigin);
    expect(await runDueAlarm(stub)).toBe(true); // the probe at link-up: the first failure
    killed.socket.ws.close(1000, "gone");
    await killed.closed;
    clock.advance(2000);
    expect(await runDueAlarm(stub)).toBe(true); // the second failure, with no link pinging
    expect(origin.state.probes).toBe(2);
    expect((await stub.list()).origin.state).toBe("online");
    clock.advance(ORIGIN_LINK_TTL_MS - 2000);
    await settle(stub);
    expect(originEvents(phone)).toEqual([
      ["origin_online", "online", true],
      ["origin_offline", "offline", false],
    ]);
    expect(await frozen.closed).toMatchObject({ code: 4408 });
    phone.close();
  });

  it("without the link, the probe alone decides as before: a link that went away and a probe that answers is online, link:false", async () => {
    const stub = hub();
    const phone = await watching(stub);
    const { socket } = await linkOn(stub);
    await settle(stub);
    socket.ws.close(1001, "bye");
    await phone.next((m) => eventOf(m).type === "origin_offline");
    // The link is gone, but the origin answers through the tunnel (it runs on without its credential). The probe this
    // asks for waits until 2 s after the one at link-up: a link flapping in a loop cannot make the hub probe in a loop.
    await settle(stub);
    expect(originEvents(phone).at(-1)![0]).toBe("origin_offline");
    clock.advance(2000);
    await settle(stub);
    expect(eventOf(await phone.next((m) => eventOf(m).type === "origin_online" && eventOf(m).data?.link === false)).data).toMatchObject({
      state: "online",
      link: false,
    });
    phone.close();
  });
});

describe("the outbox", () => {
  it("is flushed at once when a link comes up, instead of waiting out its backoff", async () => {
    const stub = hub();
    origin.state.events = 503;
    await stub.heartbeat(CALLER, [{ id: "s1" }]);
    await stub.end(CALLER, "s1", { exitCode: 0 });
    for (let i = 0; i < 4; i++) {
      clock.advance((await alarmOf(stub))! - Date.now());
      await runDueAlarm(stub);
    }
    const retryAt = (await alarmOf(stub))!;
    expect(retryAt).toBeGreaterThan(Date.now() + 2000);
    expect(origin.eventsOf(hubIdOf(stub))).toEqual([]);
    origin.state.events = 200;
    await linkOn(stub);
    expect(await alarmOf(stub)).toBe(Date.now());
    expect(await runDueAlarm(stub)).toBe(true);
    expect(origin.eventsOf(hubIdOf(stub)).map((e) => e.type)).toEqual(["session_online", "session_ended", "origin_online"]);
    expect((await stub.stats()).outboxDepth).toBe(0);
  });
});

describe("bad input on a link", () => {
  it("anything but a ping closes it (1008); a fifth link closes the oldest (1008)", async () => {
    const stub = hub();
    const chatty = await linkOn(stub);
    chatty.socket.ws.send(JSON.stringify({ type: "heartbeat" }));
    expect(await chatty.closed).toEqual({ code: 1008, reason: "an origin link carries only pings" });
    const links = [];
    for (let i = 0; i < 5; i++) {
      links.push(await linkOn(stub));
      clock.advance(10);
    }
    expect(await links[0]!.closed).toEqual({ code: 1008, reason: "too many origin links" });
    expect(await runInDurableObject(stub, (_hub, state) => state.getWebSockets("origin-link").filter((ws) => ws.readyState === WebSocket.OPEN).length)).toBe(4);
    for (const link of links.slice(1)) link.socket.close();
  });
});

describe("through the Worker", () => {
  const upgrade = async (token: string | null, headers: Record<string, string> = {}) =>
    api("/api/presence/origin", { headers: { upgrade: "websocket", ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers } });

  it("owners and members may open one; a viewer 403; a plain GET 426; a foreign Origin 403; no credential 401; POST 405", async () => {
    socketOf(await upgrade(await tokenFor("owner"))).close();
    socketOf(await upgrade(await tokenFor("member"))).close();
    await expectError(await upgrade(await tokenFor("viewer")), 403, "FORBIDDEN");
    await expectError(await api("/api/presence/origin", await as("member", "GET")), 426, "UPGRADE_REQUIRED");
    await expectError(await upgrade(await tokenFor("member"), { origin: "https://evil.example" }), 403, "FORBIDDEN_ORIGIN");
    await expectError(await upgrade(null), 401, "AUTH_REQUIRED");
    await expectError(await upgrade("not.a.jwt"), 401, "AUTH_INVALID");
    const post = await api("/api/presence/origin", await as("member", "POST", {}));
    await expectError(post, 405, "METHOD_NOT_ALLOWED");
  });

  it("is listed with the devices, as the devices are (owners see all, others their own); revoking the device closes it", async () => {
    const member = await deviceLogin("member", { client_name: "outpost-cli", hostname: "laptop" });
    const res = await upgrade(member.access_token);
    const link = socketOf(res);
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      link.ws.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason })),
    );
    const list = async (token: string) =>
      (await (await api("/api/devices", { headers: { authorization: `Bearer ${token}` } })).json()) as Record<string, unknown>;
    const expected = { deviceId: member.device_id, email: "member@example.com", connectedAt: new Date(Date.now()).toISOString() };
    expect((await list(member.access_token)).originLinks).toEqual([expect.objectContaining(expected)]);
    expect((await list(await tokenFor("owner"))).originLinks).toEqual(expect.arrayContaining([expect.objectContaining(expected)]));
    expect((await list(await tokenFor("viewer"))).originLinks).toEqual([]);

    const revoked = await api(`/api/devices/${member.device_id}`, { method: "DELETE", headers: { authorization: `Bearer ${await tokenFor("owner")}` } });
    expect(revoked.status).toBe(200);
    expect(await closed).toEqual({ code: 4401, reason: "session revoked" });
    // Its token is refused from now on, so it cannot come back.
    await expectError(await upgrade(member.access_token), 401, "AUTH_INVALID");
    expect((await list(await tokenFor("owner"))).originLinks).not.toEqual(expect.arrayContaining([expect.objectContaining({ deviceId: member.device_id })]));
  });
});
