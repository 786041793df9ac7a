// The phones watching presence: hibernatable WebSockets, their opening messages (snapshot or replay), and fan-out.
import { SESSION_ENDED } from "../../shared/api-types.ts";
import type { PresenceMessage } from "../../shared/events.ts";
import type { OriginState, PresenceEvent, SessionView } from "./model.ts";
import type { PresenceStore } from "./store.ts";
import { AGENT_TAG, type Agent } from "./agents.ts";

/** The tag of phones' sockets: events are broadcast to these only, never to agents. */
const WATCHER_TAG = "watcher";

/** Who is behind a socket; stored with the socket so it survives hibernation. */
export interface Watcher {
  sub: string;
  /** When the credential that opened the socket expires, in seconds since the epoch. */
  exp: number;
  /** The signed-in device behind the credential, if any: revoking it closes the socket. */
  deviceId?: string | null;
}

export type Snapshot = { sessions: SessionView[]; origin: OriginState };

/**
 * The header the Worker uses to tell the hub who opened a socket (a phone's on /ws, an agent's on /agent); the hub is
 * reachable only through the Worker.
 */
export const WATCHER_HEADER = "x-outpost-watcher";

/**
 * Opens the socket a Worker-forwarded upgrade asks for: an agent's on /agent, or a phone's on /ws (resuming after
 * `?after=` when given). Null for anything else, which the hub answers with a 404 (origin links on /origin are the
 * hub's own: links.ts).
 */
export function openSocket(request: Request, watchers: Watchers, store: PresenceStore, now: number, snapshot: () => Snapshot): Response | null {
  const url = new URL(request.url);
  const who = JSON.parse(request.headers.get(WATCHER_HEADER) ?? "null") as (Watcher & Agent) | null;
  if (request.headers.get("upgrade")?.toLowerCase() !== "websocket" || !who) return null;
  if (url.pathname === "/agent") return watchers.acceptAgent({ sub: who.sub, email: who.email, exp: who.exp, deviceId: who.deviceId ?? null, role: who.role });
  if (url.pathname !== "/ws") return null;
  const afterRaw = url.searchParams.get("after");
  const after = afterRaw === null ? null : Number(afterRaw);
  if (after !== null) store.pruneLog(now);
  // Opening messages are queued before anything else can run, so no live event slips in ahead of them.
  return watchers.accept(who, openingMessages(store, after, snapshot));
}

export function eventMessage(event: PresenceEvent): string {
  return JSON.stringify({ type: "event", seq: event.seq, event } satisfies PresenceMessage);
}

/**
 * What a new socket is sent first. A client resuming from a seq whose successors are all still in the log gets exactly
 * those events; anyone else (first connection, too old, or a seq this hub never issued) gets a snapshot.
 */
function openingMessages(store: PresenceStore, after: number | null, snapshot: () => Snapshot): string[] {
  const lastSeq = store.lastSeq();
  if (after !== null && after <= lastSeq) {
    const first = store.firstLogSeq();
    if (after === lastSeq) return [];
    if (first !== null && first <= after + 1) return store.eventsAfter(after).map(eventMessage);
  }
  const snap = snapshot();
  return [
    JSON.stringify({
      type: "snapshot",
      seq: lastSeq,
      ...(after !== null ? { reset: true as const } : {}),
      sessions: snap.sessions,
      origin: snap.origin,
    } satisfies PresenceMessage),
  ];
}

export class Watchers {
  readonly #ctx: DurableObjectState;

  constructor(ctx: DurableObjectState) {
    this.#ctx = ctx;
    // Answered by the runtime without waking the hub, so an idle phone's keep-alive costs nothing.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  /** Phones watching. */
  count(): number {
    return this.#ctx.getWebSockets(WATCHER_TAG).length;
  }

  /** Every open socket: phones', agents' and origin links. */
  total(): number {
    return this.#ctx.getWebSockets().length;
  }

  /** Accepts a hibernatable socket, queues its opening messages, and returns the 101 for the Worker to pass on. */
  accept(watcher: Watcher, opening: string[]): Response {
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.#ctx.acceptWebSocket(server, [WATCHER_TAG]);
    server.serializeAttachment(watcher);
    for (const message of opening) server.send(message);
    return new Response(null, { status: 101, webSocket: client });
  }

  /** Accepts an agent process's hibernatable socket; it receives only answers to its own messages. */
  acceptAgent(agent: Agent): Response {
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.#ctx.acceptWebSocket(server, [AGENT_TAG]);
    server.serializeAttachment({ ...agent, malformed: 0 } satisfies Agent);
    return new Response(null, { status: 101, webSocket: client });
  }

  isAgent(ws: WebSocket): boolean {
    return this.#ctx.getTags(ws).includes(AGENT_TAG);
  }

  /** Sends to every open socket; one whose credential has expired is closed instead (checked here, costing nothing idle). */
  broadcast(message: string, now: number): void {
    for (const ws of this.#ctx.getWebSockets(WATCHER_TAG)) {
      const watcher = ws.deserializeAttachment() as Watcher | null;
      try {
        if (!watcher || watcher.exp * 1000 <= now) ws.close(SESSION_ENDED, "session expired");
        else ws.send(message);
      } catch {
        // Already closing; the runtime reports the close separately.
      }
    }
  }

  /**
   * Closes sockets (phones' and agents') whose credential has expired or whose device was revoked. Runs with the hub's
   * alarm, which comes at least every probe interval while any socket is open, so a socket outlives its credential by
   * at most that long. An agent then reconnects with a refreshed token.
   */
  async closeEnded(now: number, isRevoked: (deviceId: string) => Promise<boolean>): Promise<number> {
    const verdicts = new Map<string, Promise<boolean>>();
    let closed = 0;
    for (const ws of this.#ctx.getWebSockets()) {
      const watcher = ws.deserializeAttachment() as Watcher | null;
      let reason: string | null = !watcher || watcher.exp * 1000 <= now ? "session expired" : null;
      if (!reason && watcher?.deviceId) {
        const id = watcher.deviceId;
        if (!verdicts.has(id))
          verdicts.set(
            id,
            isRevoked(id).catch(() => false),
          );
        if (await verdicts.get(id)) reason = "session revoked";
      }
      if (!reason) continue;
      try {
        ws.close(SESSION_ENDED, reason);
        closed++;
      } catch {
        // Already closing.
      }
    }
    return closed;
  }

  /** Closes every socket (phones', agents', origin links) opened with this device's credential; returns how many. */
  closeDevice(deviceId: string): number {
    let closed = 0;
    for (const ws of this.#ctx.getWebSockets()) {
      if ((ws.deserializeAttachment() as Watcher | null)?.deviceId !== deviceId) continue;
      try {
        ws.close(SESSION_ENDED, "session revoked");
        closed++;
      } catch {
        // Already closing.
      }
    }
    return closed;
  }

  /** Completes the closing handshake the client started. */
  closed(ws: WebSocket, code: number, reason: string): void {
    try {
      ws.close(code === 1005 || code === 1006 || code === 1015 ? 1000 : code, reason);
    } catch {
      // Already closed.
    }
  }
}
