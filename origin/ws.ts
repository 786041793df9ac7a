// The origin's WebSockets: the built-in API's live event stream of store changes, and the socket routes of extensions.
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import { OutpostError } from "../shared/errors.ts";
import { pathOf, rejectUpgrade } from "./http.ts";
import type { Change, Store } from "./store.ts";
import type { OutpostIdentity } from "./verify.ts";

const STREAM_PATH = "/api/ws/events";
/** A subscriber this far behind (bytes queued) is dropped rather than buffered without bound. */
const MAX_BUFFERED = 4 * 1024 * 1024;
const PING_EVERY_MS = 25_000;

/** A WebSocket route: the accepted socket and who opened it (the upgrade was verified before). */
export type SocketRoute = (ws: WebSocket, identity: OutpostIdentity) => void;

export interface BuiltinSockets {
  /** Handles an upgrade the origin already verified; unknown paths get a 404. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, identity: OutpostIdentity, requestId: string): void;
  /** Open sockets, for tests and shutdown. */
  readonly clients: Set<WebSocket>;
  close(): void;
}

/** `store` serves the event stream (none when forwarding to --upstream); `routes` are the extensions' socket routes. */
export function createBuiltinSockets(store: Store | null, routes: Readonly<Record<string, SocketRoute>> = {}): BuiltinSockets {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 16 * 1024 * 1024, perMessageDeflate: false });
  let seq = 0;
  const streams = new Set<WebSocket>();

  const broadcast = (change: Change) => {
    if (streams.size === 0) return;
    const message = JSON.stringify({ seq: ++seq, type: change.type, data: change.data, at: new Date().toISOString() });
    for (const ws of streams) {
      if (ws.readyState !== ws.OPEN) continue;
      if (ws.bufferedAmount > MAX_BUFFERED) ws.close(1013, "too far behind; reconnect");
      else ws.send(message);
    }
  };
  const unsubscribe = store?.subscribe(broadcast);

  const pinger = setInterval(() => {
    for (const ws of wss.clients) if (ws.readyState === ws.OPEN) ws.ping();
  }, PING_EVERY_MS);
  pinger.unref();

  function stream(ws: WebSocket, identity: OutpostIdentity): void {
    streams.add(ws);
    ws.on("close", () => streams.delete(ws));
    // Clients only listen; anything they send is ignored.
    ws.send(JSON.stringify({ seq, type: "hello", data: { user: identity.email || identity.sub, role: identity.role }, at: new Date().toISOString() }));
  }

  return {
    clients: wss.clients,
    upgrade(req, socket, head, identity, requestId) {
      const path = pathOf(req.url);
      const route: SocketRoute | undefined = path === STREAM_PATH && store ? stream : Object.hasOwn(routes, path) ? routes[path] : undefined;
      if (!route || req.method !== "GET" || req.headers.upgrade?.toLowerCase() !== "websocket") {
        rejectUpgrade(socket, new OutpostError("NOT_FOUND", "No such WebSocket route."), requestId);
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on("error", () => ws.terminate());
        route(ws, identity);
      });
    },
    close() {
      clearInterval(pinger);
      unsubscribe?.();
      for (const ws of wss.clients) ws.terminate();
      wss.close();
    },
  };
}
