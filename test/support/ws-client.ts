// A WebSocket client for end-to-end tests: opens a socket or reports the refused handshake's status and body.
import type { IncomingHttpHeaders } from "node:http";
import WebSocket from "ws";

export type WsHandshake = { ok: true; ws: WebSocket } | { ok: false; status: number; headers: IncomingHttpHeaders; body: string };

export interface WsOptions {
  /** Sent as the Origin header, as a browser would. */
  origin?: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
  /** Sent as `Authorization: Bearer <token>` on the upgrade request (a CLI can; a browser uses a ticket instead). */
  bearer?: string;
}

/** Opens `url` (http(s) or ws(s)); resolves with the open socket, or with the HTTP answer that refused the upgrade. */
export function openWebSocket(url: string, options: WsOptions = {}): Promise<WsHandshake> {
  const wsUrl = url.replace(/^http/, "ws");
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl, {
      ...(options.origin ? { origin: options.origin } : {}),
      headers: { ...(options.bearer ? { Authorization: `Bearer ${options.bearer}` } : {}), ...options.headers },
      handshakeTimeout: options.timeoutMs ?? 10_000,
    });
    ws.once("open", () => resolve({ ok: true, ws }));
    ws.once("unexpected-response", (_req, res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        resolve({ ok: false, status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") });
        ws.terminate();
      });
    });
    ws.once("error", reject);
  });
}

export interface WsMessage {
  data: Buffer;
  isBinary: boolean;
}

/** The next message on `ws`, or a rejection if none arrives within `timeoutMs`. */
export function nextMessage(ws: WebSocket, timeoutMs = 5_000): Promise<WsMessage> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.off("message", onMessage);
      reject(new Error(`no WebSocket message within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (data: WebSocket.RawData, isBinary: boolean) => {
      clearTimeout(timer);
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      resolve({ data: buf, isBinary });
    };
    ws.once("message", onMessage);
  });
}

/** Closes `ws` and waits for the closing handshake to finish. */
export function closeWebSocket(ws: WebSocket, code = 1000): Promise<number> {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve(code);
    ws.once("close", (closeCode: number) => resolve(closeCode));
    ws.close(code);
  });
}
