// Real time, real alarm: a watching phone hears of a lapsed heartbeat within a second of the TTL running out, and of an
// origin link whose real pings (answered by the runtime, not the hub) stopped.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ORIGIN_LINK_PING_MS, ORIGIN_LINK_TTL_MS } from "../../../shared/api-types.ts";
import { CALLER, TTL_MS, fakeOrigin, hub, socketOf, watchHub } from "./helpers.ts";

// No fake clock here: the runtime fires the alarm on its own. The origin is faked only to keep the network quiet.
let origin: ReturnType<typeof fakeOrigin>;
beforeEach(() => {
  origin = fakeOrigin();
});
afterEach(() => origin.restore());

describe("real time", () => {
  it("session_expired reaches the socket within a second of expiresAt, from the runtime's own alarm", async () => {
    const stub = hub();
    const socket = await watchHub(stub);
    await socket.next((m) => m.type === "snapshot");
    const [beat] = await stub.heartbeat(CALLER, [{ id: "sleepy" }]);
    expect(beat!.ok).toBe(true);
    const expiresAt = beat!.ok ? beat!.expiresAt : 0;
    const message = await socket.next((m) => (m.event as { type?: string } | undefined)?.type === "session_expired", TTL_MS + 3000);
    const lag = Date.now() - expiresAt;
    console.log(JSON.stringify({ msg: "presence expiry lag", lagMs: lag }));
    expect(lag).toBeGreaterThanOrEqual(0);
    expect(lag).toBeLessThan(1000);
    expect(message.event).toMatchObject({ sessionId: "sleepy", data: { status: "failed", reason: "agent_disconnected", alive: false } });
    socket.close();
  }, 10_000);

  it("an origin link's pings keep it up past its TTL; when they stop, origin_offline comes from the runtime's own alarm", async () => {
    const stub = hub();
    const phone = await watchHub(stub);
    await phone.next((m) => m.type === "snapshot");
    const res = await stub.fetch("https://presence.internal/origin", {
      headers: {
        upgrade: "websocket",
        "x-outpost-watcher": JSON.stringify({ ...CALLER, exp: Math.floor(Date.now() / 1000) + 3600, deviceId: null, role: "member" }),
      },
    });
    const link = socketOf(res);
    const isOrigin = (m: Record<string, unknown>) => (m.event as { type?: string } | undefined)?.type?.startsWith("origin_") === true;
    await phone.next(isOrigin);
    let lastPingSent = 0;
    const until = Date.now() + 2 * ORIGIN_LINK_TTL_MS;
    while (Date.now() < until) {
      lastPingSent = Date.now();
      link.ws.send("ping");
      await link.next((m) => m.raw === "pong");
      await new Promise((r) => setTimeout(r, ORIGIN_LINK_PING_MS));
    }
    expect(phone.messages.filter(isOrigin).map((m) => (m.event as { type: string }).type)).toEqual(["origin_online"]);
    expect((await stub.list()).origin).toMatchObject({ state: "online", link: true });
    // The laptop sleeps: no more pings, and nothing answers through the tunnel either.
    origin.state.health = 503;
    const down = await phone.next(isOrigin, ORIGIN_LINK_TTL_MS + 3000);
    expect(down.event).toMatchObject({ type: "origin_offline", data: { state: "offline", link: false } });
    // lastSeen is the runtime's record of the last ping, not the link's opening.
    const lastSeen = Date.parse((down.event as { data: { lastSeen: string } }).data.lastSeen);
    expect(lastSeen).toBeGreaterThanOrEqual(lastPingSent);
    phone.close();
  }, 20_000);
});
