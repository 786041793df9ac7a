// Relays a proxied WebSocket through the edge so the edge can close it when the session expires or is revoked.
import { SESSION_ENDED } from "../../shared/api-types.ts";

export interface RelayOptions {
  /** When the credential behind the socket expires, in ms since the epoch. */
  expiresAtMs: number;
  /** Periodic check that the credential still stands (device not revoked, role kept): true, or why the socket ends. */
  stillValid?: () => Promise<true | string>;
  checkEveryMs?: number;
  /** Relay only what the origin sends: every data frame from the client is dropped (a viewer's socket). */
  readOnly?: boolean;
}

export function relayWebSocket(upstream: WebSocket, upstreamResponse: Response, options: RelayOptions): Response {
  const pair = new WebSocketPair();
  const client = pair[0];
  const edge = pair[1];
  // Under current compatibility dates binary messages arrive as Blobs, which send() would stringify.
  upstream.binaryType = "arraybuffer";
  edge.binaryType = "arraybuffer";
  upstream.accept();
  edge.accept();

  let closed = false;
  const timers: ReturnType<typeof setTimeout>[] = [];
  const closeBoth = (code: number, reason: string) => {
    if (closed) return;
    closed = true;
    for (const t of timers) clearTimeout(t);
    for (const ws of [edge, upstream]) {
      try {
        ws.close(code, reason);
      } catch {
        // already closing
      }
    }
  };

  edge.addEventListener("message", (e) => {
    if (options.readOnly) return;
    try {
      upstream.send(e.data);
    } catch {
      closeBoth(1011, "origin gone");
    }
  });
  upstream.addEventListener("message", (e) => {
    try {
      edge.send(e.data);
    } catch {
      closeBoth(1011, "client gone");
    }
  });
  // Codes 1005/1006 may not be sent in a close frame; map them to a normal close.
  const sendable = (code: number) => (code === 1005 || code === 1006 || code === 1015 ? 1000 : code);
  edge.addEventListener("close", (e) => closeBoth(sendable(e.code), e.reason));
  upstream.addEventListener("close", (e) => closeBoth(sendable(e.code), e.reason));
  edge.addEventListener("error", () => closeBoth(1011, "client error"));
  upstream.addEventListener("error", () => closeBoth(1011, "origin error"));

  timers.push(setTimeout(() => closeBoth(SESSION_ENDED, "session expired"), Math.max(0, options.expiresAtMs - Date.now())));
  if (options.stillValid) {
    const check = options.stillValid;
    const every = options.checkEveryMs ?? 30_000;
    const tick = () => {
      timers.push(
        setTimeout(async () => {
          if (closed) return;
          // A failed check (the account object briefly unreachable) keeps the socket until the next one.
          const verdict = await check().catch(() => true as const);
          if (verdict !== true) closeBoth(SESSION_ENDED, verdict);
          else tick();
        }, every),
      );
    };
    tick();
  }

  const headers = new Headers();
  const protocol = upstreamResponse.headers.get("sec-websocket-protocol");
  if (protocol) headers.set("Sec-WebSocket-Protocol", protocol);
  return new Response(null, { status: 101, webSocket: client, headers });
}
