// The origins' links: each running `outpost origin` holds one hibernatable WebSocket to the hub and sends "ping" every
// second, answered by the runtime without waking the hub; the hub reads when it last answered to tell whether the
// laptop is awake.
import { LINK_GOING_AWAY, LINK_TIMED_OUT, ORIGIN_LINK_PING_MS, ORIGIN_LINK_TTL_MS, type OriginLinkView } from "../../shared/api-types.ts";
import { closeQuietly, POLICY_VIOLATION } from "./agents.ts";
import { iso } from "./model.ts";

/** The tag of origin links; events are never broadcast to them. */
const LINK_TAG = "origin-link";
/**
 * Links held at once. One origin normally has one (two for a moment while it replaces a dead one); more means
 * something opens them in a loop, and the oldest make room.
 */
const MAX_LINKS = 4;
/** A link that pinged this recently is alive now, not merely within its TTL: two pings' worth, so one late ping is fine. */
const ALIVE_MS = 2 * ORIGIN_LINK_PING_MS;

/** Who opened a link; stored with the socket so it survives hibernation. */
export interface LinkAttachment {
  sub: string;
  email: string;
  /** When the credential that opened it expires, in seconds since the epoch (the sweep closes it then). */
  exp: number;
  deviceId: string | null;
  role: string;
  connectedAt: number;
  /** When it was last heard from as far as the hub has looked (its opening, before the first ping). */
  seenAt: number;
}

export class Links {
  readonly #ctx: DurableObjectState;
  /**
   * When the most recently closed link was last heard from. A link that closes without saying it is going away (the
   * edge closed it at its credential's expiry, the network dropped it) still counts for one TTL from then, so an origin
   * reconnecting at once (a refreshed token) never shows as a blink offline. Memory only: a hub that restarts
   * meanwhile simply decides from the sockets it has.
   */
  #lingering: number | null = null;
  /** When a link that has since closed was last heard from: lastSeen must not forget it. */
  #goneSeen: number | null = null;

  constructor(ctx: DurableObjectState) {
    this.#ctx = ctx;
  }

  /** Accepts a link, making room if too many are open, and returns the 101 for the Worker to pass on. */
  accept(who: Omit<LinkAttachment, "connectedAt" | "seenAt">, now: number): Response {
    const open = this.#open().sort((a, b) => this.seenAt(a) - this.seenAt(b));
    for (const ws of open.slice(0, Math.max(0, open.length - (MAX_LINKS - 1)))) closeQuietly(ws, POLICY_VIOLATION, "too many origin links");
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.#ctx.acceptWebSocket(server, [LINK_TAG]);
    server.serializeAttachment({ ...who, connectedAt: now, seenAt: now } satisfies LinkAttachment);
    return new Response(null, { status: 101, webSocket: client });
  }

  isLink(ws: WebSocket): boolean {
    return this.#ctx.getTags(ws).includes(LINK_TAG);
  }

  count(): number {
    return this.#ctx.getWebSockets(LINK_TAG).length;
  }

  /** When a link was last heard from: its last ping, as the runtime recorded it answering, or its opening. */
  seenAt(ws: WebSocket): number {
    const at = (ws.deserializeAttachment() as LinkAttachment | null)?.seenAt ?? 0;
    return Math.max(at, this.#ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? 0);
  }

  /** Counts a link as heard from at `at` for one TTL (the hub restarted while one was up). */
  remember(at: number): void {
    this.#lingering = Math.max(this.#lingering ?? 0, at);
  }

  /** A link closed (by the origin, the network or the hub): it counts for the rest of its TTL unless it said goodbye. */
  closed(ws: WebSocket, code: number): void {
    const seen = this.seenAt(ws);
    this.#goneSeen = Math.max(this.#goneSeen ?? 0, seen);
    if (code !== LINK_GOING_AWAY) this.#lingering = Math.max(this.#lingering ?? 0, seen);
  }

  /**
   * Whether any link is up at `now`, and when one was last heard from; closes open links that went silent (a frozen
   * origin never answers, so this does not wait for it).
   */
  sweep(now: number): { up: boolean; lastSeen: number | null } {
    let up = false;
    for (const ws of this.#open()) {
      const seen = this.seenAt(ws);
      if (seen + ORIGIN_LINK_TTL_MS > now) up = true;
      else {
        this.#goneSeen = Math.max(this.#goneSeen ?? 0, seen);
        closeQuietly(ws, LINK_TIMED_OUT, "no ping within the link's TTL");
      }
    }
    if (this.#lingering !== null && this.#lingering + ORIGIN_LINK_TTL_MS > now) up = true;
    const lastSeen = this.lastSeen();
    if (this.#lingering !== null && this.#lingering + ORIGIN_LINK_TTL_MS <= now) this.#lingering = null;
    return { up, lastSeen };
  }

  /** Whether an open link pinged just now: the origin process is running, not merely not yet timed out. */
  alive(now: number): boolean {
    return this.#open().some((ws) => this.seenAt(ws) + ALIVE_MS > now);
  }

  /** When a link (open, or closed within its TTL) was last heard from; null when there is none. */
  lastSeen(): number | null {
    return latest([...this.#upTimes(), this.#goneSeen]);
  }

  /** When the freshest link would time out if it fell silent now: the moment the answer of sweep() may change. */
  nextTimeout(): number | null {
    const last = latest(this.#upTimes());
    return last === null ? null : last + ORIGIN_LINK_TTL_MS;
  }

  /** The last-heard times that can keep the link up: open links' and the lingering one's. */
  #upTimes(): (number | null)[] {
    return [...this.#open().map((ws) => this.seenAt(ws)), this.#lingering];
  }

  /** The open links, for GET /api/devices. */
  list(): OriginLinkView[] {
    return this.#open().map((ws) => {
      const link = ws.deserializeAttachment() as LinkAttachment;
      return { deviceId: link.deviceId, email: link.email, connectedAt: iso(link.connectedAt)!, lastSeen: iso(this.seenAt(ws))! };
    });
  }

  /** Links the hub has not closed yet (one it closed may linger in the runtime's list until the peer answers). */
  #open(): WebSocket[] {
    return this.#ctx.getWebSockets(LINK_TAG).filter((ws) => ws.readyState === WebSocket.OPEN);
  }
}

function latest(times: (number | null)[]): number | null {
  const known = times.filter((t): t is number => t !== null);
  return known.length > 0 ? Math.max(...known) : null;
}
