// The shipped origin has no test routes, cuts off clients that send headers slowly, and refuses a plain-http --edge on a network.
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OriginConfigError, resolveOriginOptions } from "../../../origin/config.ts";
import type { RunningOrigin } from "../../../origin/server.ts";
import { spawnOrigin, type SpawnedOrigin } from "../../support/spawn-origin.ts";
import { openWebSocket } from "../../support/ws-client.ts";
import { assertion, signedFetch, startTestOrigin } from "./helpers.ts";

describe("the origin as shipped (origin/main.ts, what `outpost origin` runs)", () => {
  let shipped: SpawnedOrigin;
  beforeAll(async () => {
    shipped = await spawnOrigin([], {}, { diagnostics: false });
  });
  afterAll(() => shipped?.stop());

  it("verifies requests, and has no echo, SSE or WebSocket echo route", async () => {
    const me = await signedFetch(shipped.url, "/api/me");
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({ email: "owner@example.com", role: "owner" });
    for (const [method, path] of [
      ["POST", "/api/echo/x"],
      ["GET", "/api/echo/x?y=1"],
      ["GET", "/api/events?count=1"],
    ] as const) {
      const res = await signedFetch(shipped.url, path, { method, ...(method === "POST" ? { body: "hi" } : {}) });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("NOT_FOUND");
    }
    const ws = await openWebSocket(`${shipped.url}/api/ws/echo`, { headers: { "outpost-assertion": await assertion("GET", "/api/ws/echo") } });
    expect(ws.ok ? 101 : ws.status).toBe(404);
  });
});

describe("extensions (how the tests mount their diagnostics)", () => {
  let origin: RunningOrigin;
  beforeAll(async () => {
    origin = await startTestOrigin();
  });
  afterAll(() => origin?.close());

  it("are verified like the built-in API: no assertion, no echo", async () => {
    const res = await fetch(`${origin.url}/api/echo/x`);
    expect(res.status).toBe(401);
    await res.body?.cancel();
    const ws = await openWebSocket(`${origin.url}/api/ws/echo`);
    expect(ws.ok ? 101 : ws.status).toBe(401);
    expect((await signedFetch(origin.url, "/api/echo/x")).status).toBe(200);
  });
});

describe("the headers timeout", () => {
  let origin: RunningOrigin;
  beforeAll(async () => {
    origin = await startTestOrigin({ headersTimeoutMs: 200 });
  });
  afterAll(() => origin?.close());

  /** Opens a raw connection, sends `first`, and resolves with everything received once the origin closes it. */
  function sendAndWaitForClose(first: string, then?: { text: string; afterMs: number }): Promise<string> {
    const { port } = new URL(origin.url);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(port), "127.0.0.1");
      let received = "";
      const guard = setTimeout(() => {
        socket.destroy();
        reject(new Error(`the origin did not close the connection; received ${JSON.stringify(received)}`));
      }, 10_000);
      socket.on("data", (chunk) => (received += chunk.toString()));
      socket.on("error", () => {});
      socket.on("close", () => {
        clearTimeout(guard);
        resolve(received);
      });
      socket.write(first);
      if (then) setTimeout(() => socket.writable && socket.write(then.text), then.afterMs);
    });
  }

  it("closes a connection whose headers never finish, with 408", async () => {
    const received = await sendAndWaitForClose("GET /api/me HTTP/1.1\r\nHost: origin\r\nX-Slow: 1\r\n");
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
  });

  it("does not time a body: headers at once, the body well after the headers timeout, still answered", async () => {
    const path = "/api/echo/slow-body";
    const head = [
      `POST ${path} HTTP/1.1`,
      "Host: origin",
      `Outpost-Assertion: ${await assertion("POST", path)}`,
      "Content-Type: text/plain",
      "Content-Length: 5",
      "Connection: close",
      "",
      "",
    ].join("\r\n");
    const received = await sendAndWaitForClose(head, { text: "hello", afterMs: 600 });
    expect(received).toMatch(/^HTTP\/1\.1 200 /);
    expect(received).toContain('"body":"hello"');
  });
});

describe("--edge over plain http", () => {
  const env = {};
  const edgeOf = (settings: Parameters<typeof resolveOriginOptions>[0], e: NodeJS.ProcessEnv = env) => resolveOriginOptions(settings, e).edge;

  it.each(["http://localhost:8787", "http://127.0.0.1:8787", "http://127.9.8.7", "http://[::1]:8787", "https://edge.example.com"])("accepts %s", (edge) => {
    expect(edgeOf({ edge })).toBe(new URL(edge).origin);
  });

  it.each(["http://edge.example.com", "http://192.168.1.20:8787", "http://[::2]:8787", "http://localhost.example.com", "http://128.0.0.1"])(
    "refuses %s, naming --edge and --insecure",
    (edge) => {
      expect(() => edgeOf({ edge })).toThrow(OriginConfigError);
      expect(() => edgeOf({ edge })).toThrow(/^--edge must use https:\/\/ .*--insecure/);
      // From the environment too.
      expect(() => edgeOf({}, { OUTPOST_EDGE_URL: edge })).toThrow(/--edge must use https/);
    },
  );

  it("allows it with --insecure or OUTPOST_INSECURE=1, and refuses a malformed OUTPOST_INSECURE", () => {
    const edge = "http://edge.example.com:8787";
    expect(edgeOf({ edge, insecure: true })).toBe(edge);
    expect(edgeOf({ edge }, { OUTPOST_INSECURE: "1" })).toBe(edge);
    expect(edgeOf({ edge }, { OUTPOST_INSECURE: "true" })).toBe(edge);
    expect(() => edgeOf({ edge }, { OUTPOST_INSECURE: "0" })).toThrow(/--edge must use https/);
    expect(() => edgeOf({ edge }, { OUTPOST_INSECURE: "yes" })).toThrow(/^OUTPOST_INSECURE must be 1, true, 0 or false$/);
  });

  it("the shipped origin refuses to start with one (exit 2, one line naming the flag)", async () => {
    const failed = await spawnOrigin(["--edge", "http://edge.example.com"], {}, { diagnostics: false }).then(
      () => null,
      (err: Error) => err.message,
    );
    expect(failed).toMatch(/origin exited with 2: outpost origin: --edge must use https:\/\/ .*--insecure/);
  });
});
