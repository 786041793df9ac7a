// Over real sockets (workerd, the origin, an app behind --upstream): no smuggled header at either hop, no shared caching, no Outpost cookie planted, read-only viewer sockets.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer } from "ws";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { bearer, rawRequest } from "../support/http-client.ts";
import { MEMBER, VIEWER } from "../support/identity.ts";
import { startStack, type Stack } from "../support/stack.ts";
import { openWebSocket } from "../support/ws-client.ts";
import { assertion, signedFetch, startTestOrigin } from "./origin/helpers.ts";

/** What one socket at the app received before it closed. */
interface SocketRecord {
  path: string;
  messages: string[];
  closed: Promise<{ code: number; reason: string }>;
}

interface App {
  url: string;
  /** Raw header lists of HTTP requests, in arrival order. */
  requests: string[][];
  sockets: SocketRecord[];
  close(): Promise<void>;
}

const HTTP_DATE = new Date(Date.now() + 3_600_000).toUTCString();

/** The user's app: answers by path with the headers a test needs, records raw headers and what each socket carried. */
async function startApp(): Promise<App> {
  const requests: string[][] = [];
  const sockets: SocketRecord[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.rawHeaders);
    const path = req.url ?? "/";
    const headers: [string, string][] = [["content-type", "application/json"]];
    if (path === "/api/cached") headers.push(["cache-control", "public, max-age=60"]);
    if (path === "/api/expires") headers.push(["expires", HTTP_DATE]);
    if (path === "/api/cookies") {
      headers.push(
        ["set-cookie", "__Host-outpost_refresh=planted; Path=/; Secure; HttpOnly"],
        ["set-cookie", "outpost_scoped=planted; Path=/api"],
        ["set-cookie", "app_session=1; Path=/api; HttpOnly"],
        ["service-worker-allowed", "/"],
        ["clear-site-data", '"storage"'],
      );
    }
    res.writeHead(200, headers.flat());
    res.end(JSON.stringify({ rawHeaders: req.rawHeaders }));
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on("upgrade", (req, socket, head) => {
    requests.push(req.rawHeaders);
    wss.handleUpgrade(req, socket, head, (ws) => {
      const record: SocketRecord = {
        path: req.url ?? "",
        messages: [],
        closed: new Promise((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() }))),
      };
      sockets.push(record);
      ws.on("message", (data) => record.messages.push(data.toString()));
      ws.send("hello from the app");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let app: App;
let stack: Stack;
let member: string;
let viewer: string;

beforeAll(async () => {
  app = await startApp();
  stack = await startStack({ originArgs: ["--upstream", app.url], vars: { VIEWER_WEBSOCKET_PATHS: "/api/ws-read/*" } });
  [member, viewer] = await Promise.all([stack.mintToken(MEMBER), stack.mintToken(VIEWER)]);
});

afterAll(async () => {
  await stack?.stop();
  await app?.close();
});

beforeEach(() => {
  app.requests.splice(0);
  app.sockets.splice(0);
});

/** Header names as the app received them, lower-cased, "_" kept. */
const namesAt = (raw: string[]) => raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
const valueAt = (raw: string[], name: string) => raw[raw.findIndex((n, i) => i % 2 === 0 && n.toLowerCase() === name) + 1];

const SMUGGLED: Record<string, string> = {
  X_Outpost_Role: "owner",
  X_Outpost_Email: "owner@example.com",
  x_outpost_user: "outpost:owner@example.com",
  X_Forwarded_For: "6.6.6.6",
  X_Forwarded_Host: "evil.example",
  Outpost_Assertion: "forged",
  Forwarded: "for=6.6.6.6",
  "X-Original-URL": "/admin",
  "X-Rewrite-URL": "/admin",
  "True-Client-IP": "6.6.6.6",
  "X-Client-IP": "6.6.6.6",
  "X-HTTP-Method-Override": "DELETE",
  "X-HTTP-Method": "DELETE",
  "X-Method-Override": "DELETE",
};

function expectNoneSmuggled(raw: string[]): void {
  const names = namesAt(raw);
  for (const name of Object.keys(SMUGGLED)) expect(names, name).not.toContain(name.toLowerCase());
  const text = raw.join("\n");
  for (const needle of ["6.6.6.6", "evil.example", "DELETE", "/admin", "forged"]) expect(text).not.toContain(needle);
}

describe("no header smuggling at either hop", () => {
  it("through the edge: the app gets the verified identity and none of the smuggled headers", async () => {
    const res = await rawRequest(stack.edgeUrl, { method: "GET", target: "/api/smuggle", bearer: member, headers: { ...SMUGGLED, X_Custom: "kept" } });
    expect(res.status).toBe(200);
    const raw = app.requests.at(-1)!;
    expectNoneSmuggled(raw);
    expect(valueAt(raw, "x-outpost-role")).toBe("member");
    expect(valueAt(raw, "x-outpost-email")).toBe(MEMBER);
    expect(valueAt(raw, "x_custom")).toBe("kept");
  });

  it("at the origin hop alone (a request with a valid assertion that did not pass the edge's filter)", async () => {
    const headers = { ...SMUGGLED, "Outpost-Assertion": await assertion("GET", "/api/direct", { role: "viewer", email: VIEWER }) };
    // The real hyphenated X-Forwarded-For is the edge's own and passes; its "_" spelling was dropped above.
    const res = await rawRequest(stack.originUrl, { method: "GET", target: "/api/direct", headers: { ...headers, "X-Forwarded-For": "203.0.113.7" } });
    expect(res.status).toBe(200);
    const raw = app.requests.at(-1)!;
    expectNoneSmuggled(raw);
    expect(valueAt(raw, "x-outpost-role")).toBe("viewer");
    expect(valueAt(raw, "x-forwarded-for")).toBe("203.0.113.7");
  });

  it("on a WebSocket upgrade too", async () => {
    const opened = await openWebSocket(`${stack.edgeUrl}/api/ws/smuggle`, { bearer: member, headers: SMUGGLED });
    expect(opened.ok).toBe(true);
    if (!opened.ok) return;
    opened.ws.close();
    expectNoneSmuggled(app.requests.at(-1)!);
    expect(valueAt(app.requests.at(-1)!, "x-outpost-role")).toBe("member");
  });
});

describe("answers are for one user, never for a shared cache", () => {
  it.each([
    ["/api/plain", "private, no-store"],
    ["/api/cached", "public, max-age=60"],
  ])("%s arrives with Cache-Control %j", async (path, expected) => {
    const res = await fetch(`${stack.edgeUrl}${path}`, { headers: bearer(member) });
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe(expected);
    await res.body?.cancel();
  });

  it("an app's own Expires is a caching header of its own: nothing is added", async () => {
    const res = await fetch(`${stack.edgeUrl}/api/expires`, { headers: bearer(member) });
    expect(res.headers.get("expires")).toBe(HTTP_DATE);
    expect(res.headers.get("cache-control")).toBeNull();
    await res.body?.cancel();
  });

  it("the origin's own API and /health answer private, no-store", async () => {
    const origin = await startTestOrigin();
    try {
      for (const path of ["/api/me", "/api/projects", "/api/nope"]) {
        const res = await signedFetch(origin.url, path);
        expect(res.headers.get("cache-control"), path).toBe("private, no-store");
        await res.body?.cancel();
      }
      const health = await fetch(`${origin.url}/health`);
      expect(health.headers.get("cache-control")).toBe("private, no-store");
      await health.body?.cancel();
    } finally {
      await origin.close();
    }
  });
});

describe("proxied answers cannot plant Outpost's cookies or reach the web app", () => {
  it("Set-Cookie for Outpost's names, Service-Worker-Allowed and Clear-Site-Data are dropped; the app's cookie passes", async () => {
    const res = await fetch(`${stack.edgeUrl}/api/cookies`, { headers: bearer(member) });
    expect(res.status).toBe(200);
    expect(res.headers.getSetCookie()).toEqual(["app_session=1; Path=/api; HttpOnly"]);
    expect(res.headers.has("service-worker-allowed")).toBe(false);
    expect(res.headers.has("clear-site-data")).toBe(false);
    await res.body?.cancel();
  });
});

/** Opens a socket through the edge, sends one message, closes with 4000, and returns what the app recorded. */
async function sendAndClose(path: string, token: string): Promise<SocketRecord> {
  const opened = await openWebSocket(`${stack.edgeUrl}${path}`, { bearer: token });
  if (!opened.ok) throw new Error(`upgrade refused: ${opened.status} ${opened.body}`);
  const greeting = await new Promise<string>((resolve) => opened.ws.once("message", (data) => resolve(data.toString())));
  expect(greeting).toBe("hello from the app");
  opened.ws.send("write attempt");
  opened.ws.close(4000, "bye");
  const record = app.sockets.at(-1)!;
  // Frames keep their order on each hop: a relayed message would reach the app before this close.
  expect(await record.closed).toEqual({ code: 4000, reason: "bye" });
  return record;
}

describe("viewers' WebSockets", () => {
  it("outside VIEWER_WEBSOCKET_PATHS are refused with 403 and never reach the app", async () => {
    const opened = await openWebSocket(`${stack.edgeUrl}/api/ws/write`, { bearer: viewer });
    expect(opened.ok).toBe(false);
    if (opened.ok) return;
    expect(opened.status).toBe(403);
    expect(JSON.parse(opened.body)).toMatchObject({ error: { code: "FORBIDDEN" } });
    expect(app.sockets).toHaveLength(0);
  });

  it("under VIEWER_WEBSOCKET_PATHS receive what the app sends, and nothing they send reaches it", async () => {
    expect((await sendAndClose("/api/ws-read/feed", viewer)).messages).toEqual([]);
  });

  it("a member's socket on the same path carries the same message (the control)", async () => {
    expect((await sendAndClose("/api/ws-read/feed", member)).messages).toEqual(["write attempt"]);
  });
});
