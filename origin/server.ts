// The origin's first cut: a Hono app on Node with health, echo, Server-Sent Events and a WebSocket echo.
import { createAdaptorServer, upgradeWebSocket } from "@hono/node-server";
import { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { createHash } from "node:crypto";
import type { AddressInfo } from "node:net";
import { WebSocketServer } from "ws";

export interface OriginOptions {
  port?: number;
  host?: string;
}

export interface RunningOrigin {
  url: string;
  port: number;
  close(): Promise<void>;
}

// Echo bodies larger than this are summarised by length and digest rather than returned whole.
const ECHO_INLINE_LIMIT = 64 * 1024;

export function createOriginApp() {
  const app = new Hono();

  app.get("/health", (c) => c.json({ status: "ok", service: "outpost-origin" }));

  app.all("/api/echo/*", async (c) => {
    const url = new URL(c.req.url);
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    const headers: Record<string, string> = {};
    c.req.raw.headers.forEach((value, name) => {
      headers[name] = value;
    });
    return c.json({
      method: c.req.method,
      path: url.pathname,
      query: url.search,
      headers,
      bodyBytes: bytes.byteLength,
      bodySha256: createHash("sha256").update(bytes).digest("hex"),
      body: bytes.byteLength <= ECHO_INLINE_LIMIT ? new TextDecoder().decode(bytes) : null,
    });
  });

  app.get("/api/events", (c) => {
    const count = clampInt(c.req.query("count"), 5, 1, 1000);
    const intervalMs = clampInt(c.req.query("interval"), 200, 0, 10_000);
    return streamSSE(c, async (stream) => {
      for (let i = 1; i <= count && !stream.aborted; i++) {
        await stream.writeSSE({ id: String(i), event: "tick", data: JSON.stringify({ n: i, at: Date.now() }) });
        if (i < count) await stream.sleep(intervalMs);
      }
    });
  });

  app.get(
    "/api/ws/echo",
    upgradeWebSocket(() => ({
      onMessage(event, ws) {
        ws.send(typeof event.data === "string" ? event.data : new Uint8Array(event.data as ArrayBuffer));
      },
    })),
  );

  app.notFound((c) =>
    c.json({ error: { code: "NOT_FOUND", message: "No such route.", requestId: c.req.header("x-request-id") ?? "" } }, 404),
  );
  return app;
}

function clampInt(raw: string | undefined, fallback: number, min: number, max: number): number {
  const n = raw === undefined ? fallback : Number.parseInt(raw, 10);
  return Number.isFinite(n) ? Math.min(max, Math.max(min, n)) : fallback;
}

export async function startOrigin(options: OriginOptions = {}): Promise<RunningOrigin> {
  const app = createOriginApp();
  const wss = new WebSocketServer({ noServer: true });
  const server = createAdaptorServer({ fetch: app.fetch, websocket: { server: wss } });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 8788, options.host ?? "127.0.0.1", () => resolve());
  });
  const { port, address } = server.address() as AddressInfo;
  const host = address.includes(":") ? `[${address}]` : address;
  return {
    url: `http://${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close();
        if ("closeAllConnections" in server) server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
