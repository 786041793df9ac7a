// Test-only routes on the real origin: an HTTP echo, Server-Sent Events and a WebSocket echo, what the end-to-end tests check through the edge.
import { streamSSE } from "hono/streaming";
import { createHash } from "node:crypto";
import type { OriginExtension } from "../../origin/app.ts";

/** Echo bodies larger than this are summarised by length and digest rather than returned whole. */
const ECHO_INLINE_LIMIT = 64 * 1024;

function clampInt(raw: string | undefined, fallback: number, min: number, max: number): number {
  const n = raw === undefined ? fallback : Number.parseInt(raw, 10);
  return Number.isFinite(n) ? Math.min(max, Math.max(min, n)) : fallback;
}

/**
 * Mounted through the origin's extension point (startOrigin's / runOrigin's `extensions`), never by `outpost origin`.
 * Like the built-in API they are reached only with a verified assertion.
 */
export const originDiagnostics: OriginExtension = {
  routes(app) {
    // Everything the request carried, as the origin received it.
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

    // `count` tick events, `interval` ms apart.
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
  },
  sockets: {
    "/api/ws/echo": (ws) => {
      ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
    },
  },
};
