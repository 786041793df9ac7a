// Agents' WebSocket: heartbeats and end reports as messages, per-session answers, bad input, credentials, and no writes.
import { runInDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { PresenceHub } from "../../../durable-objects/presence/hub.ts";
import { CALLER, OTHER, api, as, clock, expectError, fakeOrigin, hub, runDueAlarm, socketOf, tokenFor, unique, type Role, type Socket } from "./helpers.ts";

let origin: ReturnType<typeof fakeOrigin>;
beforeEach(() => {
  clock.start();
  origin = fakeOrigin();
});
afterEach(() => {
  origin.restore();
  clock.stop();
});

type Ack = {
  type: string;
  id?: unknown;
  message?: string;
  results?: { id: string | null; status: string; ttl: number; expiresAt: string | null; interval: number; message?: string }[];
};

const upgrade = async (role: Role = "member", headers: Record<string, string> = {}, query = "") =>
  api(`/api/presence/agent${query}`, { headers: { upgrade: "websocket", authorization: `Bearer ${await tokenFor(role)}`, ...headers } });

/** Opens an agent socket straight on a hub, as the Worker would after authenticating; records how it closes. */
async function agentOn(stub: DurableObjectStub<PresenceHub>, who: Partial<{ sub: string; email: string; exp: number; deviceId: string | null }> = {}) {
  const res = await stub.fetch("https://presence.internal/agent", {
    headers: {
      upgrade: "websocket",
      "x-outpost-watcher": JSON.stringify({ ...CALLER, exp: Math.floor(Date.now() / 1000) + 3600, role: "member", ...who }),
    },
  });
  const socket = socketOf(res);
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    socket.ws.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason }));
  });
  return { socket, closed };
}

let msgId = 0;
/** Sends one message and waits for the answer carrying its id. */
async function send(socket: Socket, message: Record<string, unknown>): Promise<Ack> {
  const id = message.id ?? ++msgId;
  socket.ws.send(JSON.stringify({ id, ...message }));
  return (await socket.next((m) => m.id === id)) as Ack;
}

describe("through the Worker", () => {
  it("a member's heartbeat is acknowledged per session with the TTL and interval, and the session is live", async () => {
    const id = unique("ws");
    const socket = socketOf(await upgrade("member"));
    const ack = await send(socket, { type: "heartbeat", sessions: [{ id, name: "job", status: "working", pid: 42 }] });
    expect(ack).toEqual({
      type: "ack",
      id: expect.any(Number),
      results: [{ id, status: "accepted", ttl: 2, interval: 1, expiresAt: new Date(Date.now() + 2000).toISOString() }],
    });
    const res = await api(`/api/heartbeat/${id}`, await as("member", "GET"));
    expect(await res.json()).toMatchObject({ alive: true, data: { id, name: "job", pid: 42, owner: "member@example.com" } });
    socket.close();
  });

  it("an owner may open one; a viewer gets 403; a plain GET 426; a foreign Origin 403; no credential 401", async () => {
    socketOf(await upgrade("owner")).close();
    await expectError(await upgrade("viewer"), 403, "FORBIDDEN");
    await expectError(await api("/api/presence/agent", await as("member", "GET")), 426, "UPGRADE_REQUIRED");
    await expectError(await upgrade("member", { origin: "https://evil.example" }), 403, "FORBIDDEN_ORIGIN");
    expect((await api("/api/presence/agent", { headers: { upgrade: "websocket" } })).status).toBe(401);
  });

  it("opens with a single-use ticket in ?ticket=", async () => {
    const res = await api("/auth/ws-ticket", await as("member", "POST", { path: "/api/presence/agent" }));
    const { ticket } = await res.json<{ ticket: string }>();
    const socket = socketOf(await api(`/api/presence/agent?ticket=${ticket}`, { headers: { upgrade: "websocket" } }));
    const ack = await send(socket, { type: "heartbeat", sessions: [{ id: unique("ticket") }] });
    expect(ack.results![0]!.status).toBe("accepted");
    socket.close();
  });

  it("an end report ends the session (failed for a non-zero exit code)", async () => {
    const id = unique("end");
    const socket = socketOf(await upgrade("member"));
    await send(socket, { type: "heartbeat", sessions: [{ id }] });
    const ack = await send(socket, { type: "end", sessionId: id, exitCode: 3, reason: "exited with code 3" });
    expect(ack).toMatchObject({ type: "ack", results: [{ id, status: "accepted" }] });
    const res = await api(`/api/heartbeat/${id}`, await as("member", "GET"));
    expect(await res.json()).toMatchObject({ alive: false, data: { status: "failed", exitCode: 3, reason: "exited with code 3" } });
    expect((await send(socket, { type: "end", sessionId: unique("nobody") })).results![0]!.status).toBe("not_found");
    socket.close();
  });

  it("phones watching see the agent's sessions; the agent gets no events", async () => {
    const phone = socketOf(await api("/api/presence/ws", { headers: { upgrade: "websocket", authorization: `Bearer ${await tokenFor("viewer")}` } }));
    await phone.next((m) => m.type === "snapshot");
    const socket = socketOf(await upgrade("member"));
    const id = unique("seen");
    await send(socket, { type: "heartbeat", sessions: [{ id }] });
    const event = (await phone.next((m) => (m.event as { sessionId?: string } | undefined)?.sessionId === id)) as { event: { type: string } };
    expect(event.event.type).toBe("session_online");
    await new Promise((r) => setTimeout(r, 100));
    expect(socket.messages.every((m) => m.type === "ack")).toBe(true);
    phone.close();
    socket.close();
  });
});

describe("answers per session", () => {
  it("ownership, the 1/s limit, ended sessions and invalid entries are answered one by one", async () => {
    const stub = hub();
    const mine = unique("mine");
    const theirs = unique("theirs");
    const ended = unique("ended");
    await stub.heartbeat(OTHER, [{ id: theirs }]);
    await stub.heartbeat(CALLER, [{ id: ended }]);
    await stub.end(CALLER, ended, { exitCode: 0 });
    const { socket } = await agentOn(stub);
    const first = await send(socket, {
      type: "heartbeat",
      sessions: [{ id: mine }, { id: theirs }, { id: ended }, { id: "bad id!" }, { id: unique("x"), status: "sleeping" }, { id: mine }],
    });
    expect(first.results!.map((r) => [r.id, r.status])).toEqual([
      [mine, "accepted"],
      [theirs, "forbidden"],
      [ended, "conflict"],
      ["bad id!", "invalid"],
      [expect.any(String), "invalid"],
      [mine, "invalid"],
    ]);
    expect(first.results![4]!.message).toContain('"status"');
    // Again within the second: rate limited; a second later: accepted.
    expect((await send(socket, { type: "heartbeat", sessions: [{ id: mine }] })).results![0]!.status).toBe("rate_limited");
    clock.advance(1000);
    expect((await send(socket, { type: "heartbeat", sessions: [{ id: mine }] })).results![0]!.status).toBe("accepted");
    expect((await stub.get(theirs)).data!.owner).toBe(OTHER.email);
    socket.close();
  });

  it("an entry over 8 KiB is invalid; the others in the batch go through", async () => {
    const stub = hub();
    const { socket } = await agentOn(stub);
    const small = unique("small");
    const ack = await send(socket, { type: "heartbeat", sessions: [{ id: unique("big"), meta: { pad: "x".repeat(9000) } }, { id: small }] });
    expect(ack.results!.map((r) => r.status)).toEqual(["invalid", "accepted"]);
    expect((await stub.get(small)).alive).toBe(true);
    socket.close();
  });
});

describe("malformed messages", () => {
  it("get an error and change nothing; more than 5 in a row close the socket with 1008", async () => {
    const stub = hub();
    const { socket, closed } = await agentOn(stub);
    const before = await stub.stats();
    const bad: string[] = [
      "not json",
      JSON.stringify([1, 2]),
      JSON.stringify({ type: "heartbeat", sessions: [{ id: "a" }] }),
      JSON.stringify({ id: 1, type: "dance" }),
      JSON.stringify({ id: 2, type: "heartbeat", sessions: [] }),
      JSON.stringify({ id: 3, type: "heartbeat", sessions: Array.from({ length: 101 }, (_, i) => ({ id: `s${i}` })) }),
    ];
    // Five in a row, then a good one resets the count.
    for (const raw of bad.slice(0, 5)) socket.ws.send(raw);
    for (let i = 0; i < 5; i++) await socket.next((m) => m.type === "error");
    expect(socket.messages.filter((m) => m.type === "error").map((m) => m.id)).toEqual([undefined, undefined, undefined, 1, 2]);
    expect((await send(socket, { type: "heartbeat", sessions: [{ id: unique("ok") }] })).type).toBe("ack");
    const mid = await stub.stats();
    expect(mid.heartbeats - before.heartbeats).toBe(1);
    // A message over 64 KiB, and five more bad ones: the sixth in a row closes the socket.
    socket.ws.send(JSON.stringify({ id: 9, type: "heartbeat", sessions: [{ id: "big", meta: { pad: "x".repeat(70_000) } }] }));
    for (const raw of bad.slice(0, 4)) socket.ws.send(raw);
    socket.ws.send(bad[5]!);
    expect(await closed).toEqual({ code: 1008, reason: "too many malformed messages" });
    const errors = socket.messages.filter((m) => m.type === "error");
    expect(errors.length).toBe(11);
    expect(errors[5]!.message).toMatch(/at most 65536 bytes/);
    expect((await stub.stats()).heartbeats).toBe(mid.heartbeats);
  });
});

describe("credentials", () => {
  it("an agent socket whose token expired, or whose device is gone, is closed with 4401 at the alarm's sweep", async () => {
    const stub = hub();
    const now = Math.floor(Date.now() / 1000);
    const expiring = await agentOn(stub, { exp: now + 20 });
    const revoked = await agentOn(stub, { deviceId: "dev_no_such_device" });
    const fine = await agentOn(stub);
    const id = unique("live");
    expect((await send(fine.socket, { type: "heartbeat", sessions: [{ id }] })).results![0]!.status).toBe("accepted");
    expect((await stub.stats()).agents).toBe(3);
    clock.advance(31_000);
    expect(await runDueAlarm(stub)).toBe(true);
    expect(await expiring.closed).toEqual({ code: 4401, reason: "session expired" });
    expect(await revoked.closed).toEqual({ code: 4401, reason: "session revoked" });
    expect(await runInDurableObject(stub, (_hub, state) => state.getWebSockets("agent").length)).toBe(1);
    fine.socket.close();
  });

  it("a heartbeat on a socket whose token has expired closes it with 4401 and counts for nothing", async () => {
    const stub = hub();
    const { socket, closed } = await agentOn(stub, { exp: Math.floor(Date.now() / 1000) + 5 });
    clock.advance(6000);
    socket.ws.send(JSON.stringify({ id: 1, type: "heartbeat", sessions: [{ id: unique("late") }] }));
    expect(await closed).toEqual({ code: 4401, reason: "session expired" });
    expect((await stub.stats()).heartbeats).toBe(0);
  });
});

describe("cost", () => {
  it("heartbeats over the socket write nothing in steady state", async () => {
    const stub = hub();
    const { socket } = await agentOn(stub);
    const ids = [unique("a"), unique("b"), unique("c")];
    await send(socket, { type: "heartbeat", sessions: ids.map((id) => ({ id, status: "working" })) });
    // The sessions' online events delivered and the origin's state recorded: from here on, steady state.
    for (let i = 0; i < 10 && (await runDueAlarm(stub)); i++);
    const before = await stub.stats();
    for (let i = 0; i < 50; i++) {
      clock.advance(1000);
      const ack = await send(socket, { type: "heartbeat", sessions: ids.map((id) => ({ id, status: "working" })) });
      expect(ack.results!.every((r) => r.status === "accepted")).toBe(true);
      // The alarm comes round (probe and sweep) and finds everyone alive.
      await runDueAlarm(stub);
    }
    const after = await stub.stats();
    expect(after.heartbeats - before.heartbeats).toBe(150);
    expect(after.rowsWritten - before.rowsWritten).toBe(0);
    for (const id of ids) expect((await stub.get(id)).alive).toBe(true);
    socket.close();
  });
});
