// Through the real edge and the real origin to the user's own app (--upstream): REST, SSE, streamed uploads, WebSockets, Socket.IO.
import http from "node:http";
import { io as connect, type Socket } from "socket.io-client";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { bearer, readSse, upload } from "../../support/http-client.ts";
import { MEMBER, OWNER } from "../../support/identity.ts";
import { startStack, type Stack } from "../../support/stack.ts";
import { closeWebSocket, nextMessage, openWebSocket } from "../../support/ws-client.ts";
import { startTestApp, type TestApp } from "./app-server.ts";
import { randomBytes, createHash } from "node:crypto";

let app: TestApp;
let stack: Stack;
let token: string;

beforeAll(async () => {
  app = await startTestApp();
  stack = await startStack({ originArgs: ["--upstream", app.url] });
  token = await stack.mintToken(MEMBER);
});

afterAll(async () => {
  await stack?.stop();
  await app?.close();
});

beforeEach(() => app.reset());

interface AppEcho {
  method: string;
  url: string;
  headers: Record<string, string>;
  bodyBytes: number;
  sha256: string;
}

describe("HTTP", () => {
  it("REST calls arrive with the verified identity, without the assertion or the user's token", async () => {
    const res = await fetch(`${stack.edgeUrl}/api/items/7?expand=a%20b`, {
      method: "PUT",
      headers: { ...bearer(token), "content-type": "application/json", "x-outpost-user": "forged" },
      body: JSON.stringify({ done: true }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-app")).toBe("yes");
    const echo = (await res.json()) as AppEcho;
    expect(echo).toMatchObject({ method: "PUT", url: "/api/items/7?expand=a%20b", bodyBytes: 13 });
    expect(echo.headers).toMatchObject({ "x-outpost-user": `outpost:${MEMBER}`, "x-outpost-email": MEMBER, "x-outpost-role": "member" });
    expect(echo.headers["outpost-assertion"]).toBeUndefined();
    expect(echo.headers.authorization).toBeUndefined();
  });

  it("the app's own errors pass through unchanged", async () => {
    const res = await fetch(`${stack.edgeUrl}/api/status/418`, { headers: bearer(token) });
    expect(res.status).toBe(418);
    await res.body?.cancel();
  });

  it("an SSE stream is not buffered: events arrive spaced as the app sent them", async () => {
    const read = await readSse(`${stack.edgeUrl}/api/sse?count=4&interval=300`, {}, { bearer: token });
    expect(read.status).toBe(200);
    expect(read.headers["content-type"]).toMatch(/^text\/event-stream/);
    expect(read.events.map((e) => e.id)).toEqual(["1", "2", "3", "4"]);
    // Buffered, all four would land together at the end.
    expect(read.events[0]!.at).toBeLessThan(read.endedAt - 600);
    expect(read.events[3]!.at - read.events[0]!.at).toBeGreaterThan(600);
  });

  it("a 5 MB chunked upload arrives intact", async () => {
    const body = randomBytes(5 * 1024 * 1024);
    const res = await upload(`${stack.edgeUrl}/api/upload`, body, { bearer: token });
    expect(res.status).toBe(200);
    const echo = JSON.parse(res.body) as AppEcho;
    expect(echo.bodyBytes).toBe(body.byteLength);
    expect(echo.sha256).toBe(createHash("sha256").update(body).digest("hex"));
  });

  it("an upload is streamed: the app has the first bytes before the client has sent the rest", async () => {
    const req = http.request(`${stack.edgeUrl}/api/upload-slow`, { method: "POST", headers: { ...bearer(token), "content-type": "application/octet-stream" } });
    const answer = new Promise<AppEcho>((resolve, reject) => {
      req.on("response", (res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString()));
        res.on("end", () => resolve(JSON.parse(text) as AppEcho));
      });
      req.on("error", reject);
    });
    req.write(Buffer.alloc(64 * 1024, 1));
    const deadline = Date.now() + 10_000;
    while (!(app.seen[0]?.bodyBytes ?? 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(app.seen[0]?.bodyBytes, "bytes at the app while the upload is still open").toBeGreaterThan(0);
    expect(app.seen[0]?.complete).toBe(false);
    req.end(Buffer.alloc(64 * 1024, 2));
    expect((await answer).bodyBytes).toBe(128 * 1024);
  });
});

describe("WebSockets", () => {
  it("a WebSocket upgrade is forwarded to the app and echoes both ways", async () => {
    const opened = await openWebSocket(`${stack.edgeUrl}/api/ws`, { bearer: token });
    expect(opened.ok).toBe(true);
    if (!opened.ok) return;
    let reply = nextMessage(opened.ws);
    opened.ws.send("whoami");
    expect(JSON.parse((await reply).data.toString())).toEqual({ hello: MEMBER });
    // Text only: binary frames are lost in the edge's own relay today (see the `.fails` test in streaming.test.ts);
    // origin → app keeps them (direct.test.ts).
    for (const text of ["one", "twö ✓", "x".repeat(70_000)]) {
      reply = nextMessage(opened.ws);
      opened.ws.send(text);
      expect((await reply).data.toString()).toBe(text);
    }
    await closeWebSocket(opened.ws);
    const upgrade = app.seen.find((s) => s.url === "/api/ws");
    expect(upgrade?.headers["outpost-assertion"]).toBeUndefined();
    expect(upgrade?.headers["x-outpost-role"]).toBe("member");
  });

  const socketIo = (transports: ("polling" | "websocket")[], upgrade = true): Promise<Socket> =>
    new Promise((resolve, reject) => {
      const socket = connect(stack.edgeUrl, { transports, upgrade, extraHeaders: bearer(token), reconnection: false, timeout: 10_000 });
      socket.once("connect", () => resolve(socket));
      socket.once("connect_error", reject);
    });

  it.each([
    ["long-polling only", ["polling"] as const, false, "polling"],
    ["websocket only", ["websocket"] as const, false, "websocket"],
    ["polling, then upgraded to websocket", ["polling", "websocket"] as const, true, "websocket"],
  ])("Socket.IO works %s", async (_name, transports, upgrade, finalTransport) => {
    const socket = await socketIo([...transports], upgrade);
    try {
      if (upgrade) {
        await new Promise<void>((resolve) => {
          if (socket.io.engine.transport.name === "websocket") resolve();
          else socket.io.engine.once("upgrade", () => resolve());
        });
      }
      const ack = (await socket.timeout(5_000).emitWithAck("echo", { n: 1 })) as Record<string, unknown>;
      expect(ack).toEqual({ payload: { n: 1 }, transport: finalTransport, user: `outpost:${MEMBER}`, email: MEMBER, role: "member" });
      const news = new Promise<string>((resolve) => socket.once("news", resolve));
      socket.emit("broadcast-me", "hello");
      expect(await news).toBe("hello back");
    } finally {
      socket.disconnect();
    }
  });
});

describe("when the app is down", () => {
  it("the client gets 502 UPSTREAM_UNREACHABLE in the standard shape", async () => {
    await app.close();
    const res = await fetch(`${stack.edgeUrl}/api/anything`, { headers: bearer(await stack.mintToken(OWNER)) });
    expect(res.status).toBe(502);
    const body = (await res.json()) as { error: { code: string; requestId: string } };
    expect(body.error.code).toBe("UPSTREAM_UNREACHABLE");
    expect(body.error.requestId).toBe(res.headers.get("x-request-id"));
  });
});
