// Real time, real alarm: a watching phone hears of a lapsed heartbeat within a second of the TTL running out.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CALLER, TTL_MS, fakeOrigin, hub, watchHub } from "./helpers.ts";

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
});
