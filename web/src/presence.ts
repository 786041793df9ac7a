// The live presence feed: a ticket-opened WebSocket that resumes from the last seq and reconnects with backoff.
import { api, ApiError } from "./api.ts";
import { Store } from "./lib.ts";
import { SESSION_ENDED, type OriginReachability, type OriginState, type SessionView } from "../../shared/api-types.ts";
import { DISCONNECTED, type PresenceEvent, type PresenceMessage } from "../../shared/events.ts";
import type { WsTicket } from "../../shared/identity.ts";
import { PATHS } from "../../shared/paths.ts";

/** A session that stopped badly while the app was open: shown until dismissed. */
interface Alert {
  key: string;
  sessionId: string;
  label: string;
  kind: "expired" | "failed";
  at: string;
}

type Link = "connecting" | "live" | "retrying" | "stopped";

export interface FeedState {
  sessions: ReadonlyMap<string, SessionView>;
  origin: OriginState | null;
  seq: number | null;
  link: Link;
  /** When the next reconnection attempt is due (while retrying). */
  retryAt: number | null;
  alerts: Alert[];
}

const PING_EVERY_MS = 20_000;
const SILENCE_LIMIT_MS = 45_000;
const MAX_BACKOFF_MS = 30_000;

/** The origin's events and the state each reports. */
const ORIGIN_EVENTS: Partial<Record<string, OriginReachability>> = {
  origin_online: "online",
  origin_offline: "offline",
  origin_unreachable: "unreachable",
};

/** What the snapshot says, filling in `state` and `link` for an edge older than them. */
function originOf(origin: OriginState | undefined): OriginState | null {
  if (!origin) return null;
  return { ...origin, state: origin.state ?? (origin.online ? "online" : "offline"), link: origin.link ?? false };
}

const initial: FeedState = { sessions: new Map(), origin: null, seq: null, link: "stopped", retryAt: null, alerts: [] };

export function isExpired(s: SessionView): boolean {
  return s.status === "failed" && s.reason === DISCONNECTED;
}

class PresenceFeed {
  readonly state = new Store<FeedState>(initial);
  #ws: WebSocket | null = null;
  #running = false;
  #attempt = 0;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #ping: ReturnType<typeof setInterval> | undefined;
  #heardAt = 0;
  /** A ticket request is in flight: no second connection may start meanwhile. */
  #pending = false;

  constructor() {
    addEventListener("online", () => this.reconnectNow());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.#ws?.readyState === WebSocket.OPEN ? this.#send("ping") : this.reconnectNow();
    });
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    if (!this.#pending) void this.#connect();
  }

  /** Signed out: close the socket and forget everything. */
  stop(): void {
    this.#running = false;
    clearTimeout(this.#retry);
    this.#close();
    this.state.set(initial);
  }

  reconnectNow(): void {
    if (!this.#running || this.#ws || this.#pending) return;
    clearTimeout(this.#retry);
    this.#attempt = 0;
    void this.#connect();
  }

  dismiss(key: string): void {
    this.#patch({ alerts: this.state.get().alerts.filter((a) => a.key !== key) });
  }

  #patch(part: Partial<FeedState>): void {
    this.state.set({ ...this.state.get(), ...part });
  }

  async #connect(): Promise<void> {
    this.#patch({ link: this.#attempt === 0 ? "connecting" : "retrying", retryAt: null });
    let ticket: string;
    this.#pending = true;
    try {
      ({ ticket } = await api<WsTicket>(PATHS.wsTicket, { method: "POST", body: { path: PATHS.presenceSocket } }));
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return this.stop();
      return this.#scheduleRetry();
    } finally {
      this.#pending = false;
    }
    if (!this.#running || this.#ws) return;
    const url = new URL(PATHS.presenceSocket, location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("ticket", ticket);
    const seq = this.state.get().seq;
    if (seq !== null) url.searchParams.set("after", String(seq));
    const ws = new WebSocket(url);
    this.#ws = ws;
    ws.onopen = () => {
      this.#attempt = 0;
      this.#heardAt = Date.now();
      this.#patch({ link: "live", retryAt: null });
      this.#ping = setInterval(() => this.#watch(), PING_EVERY_MS);
    };
    ws.onmessage = (m) => {
      this.#heardAt = Date.now();
      if (typeof m.data === "string" && m.data !== "pong") this.#receive(m.data);
    };
    ws.onclose = (e) => {
      if (this.#ws !== ws) return;
      this.#close();
      if (!this.#running) return;
      // An expired credential: get a fresh ticket (the token renews itself) and carry on at once.
      if (e.code === SESSION_ENDED) void this.#connect();
      else this.#scheduleRetry();
    };
  }

  /** Pings the edge; a socket that has heard nothing for too long is dead (a phone's network changed) and is replaced. */
  #watch(): void {
    if (Date.now() - this.#heardAt > SILENCE_LIMIT_MS) {
      this.#close();
      this.#scheduleRetry();
    } else this.#send("ping");
  }

  #send(message: string): void {
    try {
      this.#ws?.send(message);
    } catch {
      // closing; onclose handles it
    }
  }

  #close(): void {
    clearInterval(this.#ping);
    const ws = this.#ws;
    this.#ws = null;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000);
  }

  #scheduleRetry(): void {
    if (!this.#running) return;
    const delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** this.#attempt) * (0.5 + Math.random() * 0.5);
    this.#attempt++;
    this.#patch({ link: "retrying", retryAt: Date.now() + delay });
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => void this.#connect(), delay);
  }

  #receive(raw: string): void {
    let msg: PresenceMessage;
    try {
      msg = JSON.parse(raw) as PresenceMessage;
    } catch {
      return;
    }
    const state = this.state.get();
    if (msg.type === "snapshot" && Array.isArray(msg.sessions)) {
      this.#patch({ sessions: new Map(msg.sessions.map((s) => [s.id, s])), origin: originOf(msg.origin), seq: msg.seq ?? null });
      return;
    }
    if (msg.type !== "event" || !msg.event || typeof msg.seq !== "number") return;
    if (state.seq !== null && msg.seq <= state.seq) return; // already applied (a replay overlapping what we had)
    if (state.seq !== null && msg.seq > state.seq + 1) {
      // A gap: resume from what we have, and the edge replays the rest.
      this.#close();
      return void this.#connect();
    }
    this.#apply(msg.event, msg.seq);
  }

  #apply(event: PresenceEvent, seq: number): void {
    const state = this.state.get();
    const next: Partial<FeedState> = { seq };
    const reach = ORIGIN_EVENTS[event.type];
    if (reach) {
      const data = event.data as Partial<OriginState>;
      next.origin = {
        online: reach === "online",
        state: reach,
        lastSeen: data.lastSeen ?? state.origin?.lastSeen ?? null,
        link: data.link ?? state.origin?.link ?? false,
      };
    } else if (event.type.startsWith("session_")) {
      const data = event.data as Partial<SessionView>;
      const id = data.id ?? event.sessionId;
      if (id) {
        const sessions = new Map(state.sessions);
        const view = { ...sessions.get(id), ...data, id } as SessionView;
        sessions.set(id, view);
        next.sessions = sessions;
        if (event.type === "session_expired" || event.type === "session_failed") {
          const alert: Alert = {
            key: event.id,
            sessionId: id,
            label: view.name ?? id,
            kind: event.type === "session_expired" ? "expired" : "failed",
            at: event.at,
          };
          next.alerts = [alert, ...state.alerts.filter((a) => a.sessionId !== id)].slice(0, 5);
        }
      }
    }
    this.#patch(next);
  }
}

export const feed = new PresenceFeed();
