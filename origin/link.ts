// The origin's link to the edge: one outbound WebSocket to the presence hub (GET /api/presence/origin) carrying a
// "ping" every second, so phones learn within seconds that the laptop slept or woke. It reconnects at once when a
// working link drops (backoff with jitter only after failed attempts) and fetches a fresh token when the edge closed
// it because the old one ended.
import WebSocket from "ws";
import { LINK_GOING_AWAY, ORIGIN_LINK_PING_MS, ORIGIN_LINK_TTL_MS, SESSION_ENDED } from "../shared/api-types.ts";
import { PATHS } from "../shared/paths.ts";

/** Where the link's bearer token comes from: the CLI's stored session (refreshable) or OUTPOST_TOKEN. */
export interface LinkCredential {
  /** Who the link signs in as, for the log ("the credentials of me@example.com", "OUTPOST_TOKEN"). */
  source: string;
  /** The access token; `refresh` after the edge refused or closed the link for its credential. */
  token(refresh: boolean): Promise<string>;
}

export interface OriginLinkOptions {
  /** The edge's URL (its origin). */
  edge: string;
  credential: LinkCredential;
  log: (line: string) => void;
  /** Reconnect backoff after failed attempts: from `backoffBaseMs`, doubling up to `maxBackoffMs`. */
  backoffBaseMs?: number;
  maxBackoffMs?: number;
}

export interface OriginLink {
  /** Whether the link is open now. */
  readonly up: boolean;
  /** Says goodbye (so phones see the origin offline at once) and stops reconnecting. */
  close(): Promise<void>;
}

/** Statuses that retrying soon cannot fix: the credential's role, or an edge without links. */
const PERMANENT = new Set([403, 404, 405, 426]);

export function startOriginLink(options: OriginLinkOptions): OriginLink {
  const base = options.backoffBaseMs ?? 1000;
  const max = options.maxBackoffMs ?? 60_000;
  const url = new URL(PATHS.originLink, options.edge);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  let ws: WebSocket | null = null;
  let open = false;
  let stopped = false;
  let failures = 0;
  let refresh = false;
  let heardAt = 0;
  let retry: NodeJS.Timeout | null = null;
  /** The last problem logged, so a link that keeps failing the same way logs it once. */
  let lastProblem = "";

  const problem = (text: string) => {
    if (text !== lastProblem) options.log(`origin link: ${text}`);
    lastProblem = text;
  };

  const schedule = (delay: number) => {
    if (stopped || retry) return;
    retry = setTimeout(() => {
      retry = null;
      void dial();
    }, delay);
  };

  /** At once after a link that worked; with exponential backoff and jitter after failed attempts. */
  const reconnect = () => {
    if (failures === 0) return schedule(0);
    const ceiling = Math.min(max, base * 2 ** Math.min(failures - 1, 20));
    schedule(Math.round(ceiling / 2 + Math.random() * (ceiling / 2)));
  };

  async function dial(): Promise<void> {
    if (stopped || ws) return;
    let token: string;
    try {
      token = await options.credential.token(refresh);
    } catch (err) {
      failures = Math.max(failures + 1, 8);
      problem(`no credential (${err instanceof Error ? err.message : String(err)}); presence falls back to the edge's probe`);
      return reconnect();
    }
    refresh = false;
    if (stopped) return;
    const socket = new WebSocket(url, { headers: { authorization: `Bearer ${token}` }, handshakeTimeout: 5000, perMessageDeflate: false });
    ws = socket;
    let status: number | null = null;
    socket.on("unexpected-response", (_req, res) => {
      status = res.statusCode ?? 0;
      res.resume();
      socket.terminate();
    });
    socket.on("open", () => {
      open = true;
      failures = 0;
      heardAt = Date.now();
      lastProblem = "";
      options.log(`origin link: up to ${options.edge} as ${options.credential.source}`);
      if (stopped) socket.close(LINK_GOING_AWAY, "origin stopping");
    });
    socket.on("message", () => {
      heardAt = Date.now();
    });
    socket.on("error", (err) => {
      if (status === null) problem(`${err.message}; retrying`);
    });
    socket.on("close", (code) => {
      const wasOpen = open;
      open = false;
      if (ws === socket) ws = null;
      if (stopped) return;
      if (status !== null) {
        // Refused: a 401 is worth one try with a fresh token; a role or an edge without links is not worth hurrying.
        refresh = status === 401;
        failures = PERMANENT.has(status) ? Math.max(failures + 1, 16) : failures + 1;
        problem(`the edge refused the link (${status})${status === 403 ? ": viewers cannot link an origin" : ""}; retrying with backoff`);
      } else if (wasOpen) {
        options.log(`origin link: down (${code}); reconnecting`);
        if (code === SESSION_ENDED) refresh = true;
      } else failures++;
      reconnect();
    });
  }

  // One timer for the life of the link: a ping a second, and a link that heard nothing within the TTL is dropped. After
  // the laptop wakes (the process was frozen), this fires at once and sees the silence, so the new link opens at once.
  const ticker = setInterval(() => {
    const socket = ws;
    if (!open || !socket) return;
    if (Date.now() - heardAt > ORIGIN_LINK_TTL_MS) return void socket.terminate();
    socket.send("ping", (err) => {
      if (err) socket.terminate();
    });
  }, ORIGIN_LINK_PING_MS);
  ticker.unref();
  void dial();

  return {
    get up() {
      return open;
    },
    close() {
      stopped = true;
      clearInterval(ticker);
      if (retry) clearTimeout(retry);
      const socket = ws;
      if (!socket || socket.readyState === WebSocket.CLOSED) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const done = setTimeout(() => {
          socket.terminate();
          resolve();
        }, 1000);
        socket.once("close", () => {
          clearTimeout(done);
          resolve();
        });
        if (socket.readyState === WebSocket.OPEN) socket.close(LINK_GOING_AWAY, "origin stopping");
        else socket.terminate();
      });
    },
  };
}
