// Streaming through the real Worker: SSE events arrive one by one, and WebSockets echo and honour the Origin allowlist.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readSse } from "../support/http-client.ts";
import { OWNER } from "../support/identity.ts";
import { startStack, type Stack } from "../support/stack.ts";
import { closeWebSocket, nextMessage, openWebSocket } from "../support/ws-client.ts";

let stack: Stack;
/** The owner's access token: SSE and WebSocket upgrades are proxied only when authenticated. */
let token: string;

beforeAll(async () => {
  stack = await startStack();
  token = await stack.mintToken(OWNER);
});

afterAll(async () => {
  await stack?.stop();
});

describe("Server-Sent Events", () => {
  // A browser asks for compression; a gateway that buffers (or compresses in blocks) would deliver everything at the end.
  it.each([
    ["no compression", "identity"],
    ["a browser's Accept-Encoding", "gzip, deflate, br"],
  ])("events arrive one by one, not all at the end (%s)", async (_label, acceptEncoding) => {
    const read = await readSse(`${stack.edgeUrl}/api/events?count=5&interval=300`, { "accept-encoding": acceptEncoding }, { bearer: token });
    expect(read.status).toBe(200);
    expect(read.headers["content-type"]).toMatch(/^text\/event-stream/);
    expect(read.events.map((e) => e.id)).toEqual(["1", "2", "3", "4", "5"]);
    expect(read.events.map((e) => (JSON.parse(e.data) as { n: number }).n)).toEqual([1, 2, 3, 4, 5]);
    expect(read.events.every((e) => e.event === "tick")).toBe(true);

    const times = read.events.map((e) => e.at);
    // The origin needs 4 × 300 ms to send all five; the first must be in hand long before the last.
    expect(times[0]!).toBeLessThan(read.endedAt - 800);
    expect(times[4]! - times[0]!).toBeGreaterThanOrEqual(800);
    // One late event can shorten the gap after it on a loaded machine; a buffering gateway shortens them all.
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(gaps.filter((gap) => gap > 150).length, `gaps ${gaps.join(", ")} ms`).toBeGreaterThanOrEqual(3);
  });

  it("the response carries the gateway's request id", async () => {
    const read = await readSse(`${stack.edgeUrl}/api/events?count=1&interval=0`, {}, { bearer: token });
    expect(read.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(read.events).toHaveLength(1);
  });
});

describe("WebSocket echo", () => {
  it("text messages round-trip in order without an Origin header (CLI client)", async () => {
    const handshake = await openWebSocket(`${stack.edgeUrl}/api/ws/echo`, { bearer: token });
    if (!handshake.ok) throw new Error(`upgrade refused: ${handshake.status} ${handshake.body}`);
    const { ws } = handshake;
    try {
      for (const text of ["hello", "wörld ✓", "x".repeat(10_000)]) {
        ws.send(text);
        const reply = await nextMessage(ws);
        expect(reply.isBinary).toBe(false);
        expect(reply.data.toString("utf8")).toBe(text);
      }
    } finally {
      await closeWebSocket(ws);
    }
  });

  it("binary messages round-trip byte for byte, as binary frames (CLI client)", async () => {
    const handshake = await openWebSocket(`${stack.edgeUrl}/api/ws/echo`, { bearer: token });
    if (!handshake.ok) throw new Error(`upgrade refused: ${handshake.status} ${handshake.body}`);
    const { ws } = handshake;
    try {
      const bytes = randomBytes(256 * 1024);
      ws.send(bytes);
      const reply = await nextMessage(ws);
      expect(reply.isBinary).toBe(true);
      expect(reply.data.equals(bytes)).toBe(true);
    } finally {
      await closeWebSocket(ws);
    }
  });

  it.each(["https://phone.example.com", "http://localhost:8787"])("an allowed Origin (%s) connects and echoes", async (origin) => {
    const handshake = await openWebSocket(`${stack.edgeUrl}/api/ws/echo`, { origin, bearer: token });
    if (!handshake.ok) throw new Error(`upgrade refused: ${handshake.status} ${handshake.body}`);
    try {
      handshake.ws.send(`from ${origin}`);
      expect((await nextMessage(handshake.ws)).data.toString()).toBe(`from ${origin}`);
    } finally {
      await closeWebSocket(handshake.ws);
    }
  });

  it.each(["https://evil.example.com", "null", "https://phone.example.com.evil.example"])(
    "a disallowed Origin (%s) gets 403 FORBIDDEN_ORIGIN and no socket",
    async (origin) => {
      // Even with valid credentials: the Origin rule is not a matter of who is signed in.
      const handshake = await openWebSocket(`${stack.edgeUrl}/api/ws/echo`, { origin, bearer: token });
      expect(handshake.ok).toBe(false);
      if (handshake.ok) return closeWebSocket(handshake.ws).then(() => undefined);
      expect(handshake.status).toBe(403);
      const body = JSON.parse(handshake.body) as { error: { code: string; message: string; requestId: string } };
      expect(body.error.code).toBe("FORBIDDEN_ORIGIN");
      expect(body.error.requestId).toBe(handshake.headers["x-request-id"]);
      expect(handshake.headers).not.toHaveProperty("access-control-allow-origin");
    },
  );

  it("a second socket works after the first one closed", async () => {
    for (let round = 0; round < 2; round++) {
      const handshake = await openWebSocket(`${stack.edgeUrl}/api/ws/echo`, { bearer: token });
      if (!handshake.ok) throw new Error(`upgrade refused: ${handshake.status}`);
      handshake.ws.send(`round ${round}`);
      expect((await nextMessage(handshake.ws)).data.toString()).toBe(`round ${round}`);
      expect(await closeWebSocket(handshake.ws)).toBe(1000);
    }
  });
});
