// A stand-in for the user's own app behind --upstream: JSON echo, SSE, streamed uploads, a WebSocket echo and Socket.IO.
import { createHash } from "node:crypto";
import http, { type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { Server as SocketIoServer } from "socket.io";
import { WebSocketServer } from "ws";

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  bodyBytes: number;
  complete: boolean;
}

export interface TestApp {
  url: string;
  port: number;
  seen: Seen[];
  io: SocketIoServer;
  reset(): void;
  close(): Promise<void>;
}

/**
 * Routes: `/api/sse?count&interval` streams events; `/api/upload` answers {bodyBytes, sha256, firstByteAt, endAt};
 * `/api/cookies` sets two cookies; `/api/ws` is a WebSocket echo ("whoami" answers the X-Outpost-Email it got); `/socket.io/` is Socket.IO ("echo" acks its args
 * plus the X-Outpost-* headers of the handshake); anything else answers JSON with what arrived.
 */
export async function startTestApp(port = 0): Promise<TestApp> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    if (req.url?.startsWith("/socket.io/")) return; // Socket.IO's own listener answers these
    const record: Seen = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, rawHeaders: req.rawHeaders, bodyBytes: 0, complete: false };
    seen.push(record);
    const url = new URL(req.url ?? "/", "http://app.invalid");
    const hash = createHash("sha256");
    let firstByteAt: number | null = null;
    req.on("data", (chunk: Buffer) => {
      firstByteAt ??= Date.now();
      record.bodyBytes += chunk.byteLength;
      hash.update(chunk);
    });
    if (url.pathname === "/api/sse") {
      const count = Number(url.searchParams.get("count") ?? "3");
      const interval = Number(url.searchParams.get("interval") ?? "300");
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store" });
      res.flushHeaders();
      let n = 0;
      const tick = () => {
        n++;
        res.write(`id: ${n}\nevent: tick\ndata: ${JSON.stringify({ n, at: Date.now() })}\n\n`);
        if (n >= count) res.end();
        else setTimeout(tick, interval);
      };
      setTimeout(tick, interval);
      return;
    }
    req.on("end", () => {
      record.complete = true;
      if (url.pathname === "/api/cookies") {
        res.writeHead(
          200,
          [
            ["set-cookie", "a=1; Path=/"],
            ["set-cookie", "b=2; Path=/"],
            ["content-type", "text/plain"],
          ].flat(),
        );
        res.end("two cookies");
        return;
      }
      const status = /^\/api\/status\/(\d{3})$/.exec(url.pathname)?.[1];
      res.writeHead(status ? Number(status) : 200, {
        "content-type": "application/json",
        // Hop-by-hop on the way back: the origin must not pass these on.
        connection: "keep-alive, x-app-hop",
        "x-app-hop": "secret-hop",
        "keep-alive": "timeout=5",
        "x-app": "yes",
      });
      res.end(
        JSON.stringify({
          method: record.method,
          url: record.url,
          headers: req.headers,
          bodyBytes: record.bodyBytes,
          sha256: hash.digest("hex"),
          firstByteAt,
          endAt: Date.now(),
        }),
      );
    });
  });

  const io = new SocketIoServer(server, { destroyUpgrade: false, cors: { origin: true } });
  io.on("connection", (socket) => {
    socket.on("echo", (payload: unknown, ack?: (answer: unknown) => void) => {
      const h = socket.handshake.headers;
      ack?.({ payload, transport: socket.conn.transport.name, user: h["x-outpost-user"], email: h["x-outpost-email"], role: h["x-outpost-role"] });
    });
    socket.on("broadcast-me", (text: string) => socket.emit("news", `${text} back`));
  });

  const wss = new WebSocketServer({ noServer: true });
  server.on("upgrade", (req, socket, head) => {
    if (req.url?.startsWith("/socket.io/")) return;
    seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, rawHeaders: req.rawHeaders, bodyBytes: 0, complete: true });
    if (!req.url?.startsWith("/api/ws")) {
      socket.end("HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nno socket");
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on("message", (data, isBinary) => {
        if (!isBinary && data.toString() === "whoami") ws.send(JSON.stringify({ hello: req.headers["x-outpost-email"] ?? null }));
        else ws.send(data, { binary: isBinary });
      });
    });
  });

  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const address = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    port: address.port,
    seen,
    io,
    reset: () => void seen.splice(0),
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        void io.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
