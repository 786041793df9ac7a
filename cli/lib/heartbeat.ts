// Keeps sessions present at the edge: one timer for every managed session (batched when there are several),
// the interval the edge asks for, capped exponential backoff with jitter while the edge is unreachable.
// Beats go over the process's one agent WebSocket when it is open (a message costs the edge a twentieth of a request);
// the first beat, and any beat while the socket is down, goes over HTTP, and the socket reconnects on its own.
import { AgentSocket } from "./agent-socket.ts";
import { CliError, EXIT } from "./errors.ts";
import { EdgeError, debug, type EdgeClient } from "./http.ts";
import {
  ACK_CODE,
  type AckStatus,
  type EndReport,
  type HeartbeatAnswer,
  type HeartbeatBatchAnswer,
  type HeartbeatBatchBody,
  type HeartbeatBatchEntry,
  type HeartbeatBody,
  type HeartbeatEntry,
} from "../../shared/api-types.ts";
import { ERROR_STATUS } from "../../shared/errors.ts";
import { SESSION_ID_PATTERN } from "../../shared/limits.ts";
import { heartbeatPath, PATHS } from "../../shared/paths.ts";

/** What the loop tells its owner; each state change is reported once. */
export type HeartbeatEvent =
  | { type: "up"; interval: number; recovered: boolean }
  | { type: "down"; reason: string; retryInMs: number }
  | { type: "rejected"; error: CliError };

export interface HeartbeaterOptions {
  onEvent?: (event: HeartbeatEvent) => void;
  /** Seconds between heartbeats until the edge names its own interval. */
  initialInterval?: number;
  /** Backoff starts here and doubles up to the interval. */
  backoffBaseMs?: number;
  /** Beat over the agent WebSocket when it is open (default: unless OUTPOST_AGENT_SOCKET=0; needs a token). */
  socket?: boolean;
}

type Refused = Extract<HeartbeatBatchEntry, { status: "rejected" }>;
/** What one beat learned, over HTTP or the agent socket: the interval the edge asks for, and each session's answer. */
type BeatBody = { interval?: number; sessions?: ({ id: string; status: "accepted" } | Refused)[] };

/** The error code the HTTP routes would have answered with, for messages and debug lines shaped like theirs. */
const codeOf = (status: AckStatus) => (status === "accepted" ? null : ACK_CODE[status]);
const httpStatusOf = (status: AckStatus) => {
  const code = codeOf(status);
  return code === null ? 200 : ERROR_STATUS[code];
};

/** A session id the edge accepts that also starts with a letter or digit, so it cannot be taken for an option. */
export function isSessionId(id: string): boolean {
  return SESSION_ID_PATTERN.test(id) && /^[A-Za-z0-9]/.test(id);
}
const MIN_INTERVAL_S = 1;
const MAX_INTERVAL_S = 300;

export class Heartbeater {
  readonly #client: EdgeClient;
  readonly #sessions = new Map<string, HeartbeatEntry>();
  readonly #onEvent: (event: HeartbeatEvent) => void;
  readonly #backoffBaseMs: number;
  #interval: number;
  #timer: NodeJS.Timeout | null = null;
  #running = false;
  #inFlight: Promise<void> | null = null;
  #failures = 0;
  #state: "unknown" | "up" | "down" | "rejected" = "unknown";
  readonly #refusedIds = new Set<string>();
  readonly #socket: AgentSocket | null;

  constructor(client: EdgeClient, options: HeartbeaterOptions = {}) {
    this.#client = client;
    const socket = options.socket ?? process.env.OUTPOST_AGENT_SOCKET !== "0";
    this.#socket = socket && client.tokens ? new AgentSocket(client, { backoffBaseMs: options.backoffBaseMs }) : null;
    this.#onEvent = options.onEvent ?? (() => {});
    this.#interval = options.initialInterval ?? 15;
    this.#backoffBaseMs = options.backoffBaseMs ?? 1000;
  }

  /** Seconds between heartbeats, as the edge last asked. */
  get interval(): number {
    return this.#interval;
  }

  add(session: HeartbeatEntry): void {
    this.#sessions.set(session.id, session);
  }

  update(id: string, patch: Partial<HeartbeatEntry>): void {
    const s = this.#sessions.get(id);
    if (s) this.#sessions.set(id, { ...s, ...patch });
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#socket?.connect();
    this.#schedule(0);
  }

  /** Stops the loop and waits for a heartbeat in flight, so an end report can never be overtaken by it. */
  async stop(): Promise<void> {
    this.#running = false;
    this.#socket?.hold();
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#inFlight;
  }

  /** Closes the agent socket (after the end reports, which use it when it is open). */
  close(): void {
    this.#socket?.close();
  }

  /** Reports a session's end at once (exit 0 → ended, anything else → failed); null when it was recorded. */
  async end(id: string, report: EndReport, timeoutMs = 3000): Promise<CliError | null> {
    this.#sessions.delete(id);
    if (this.#socket?.open) {
      const started = Date.now();
      try {
        const [result] = await this.#socket.request({ type: "end", sessionId: id, ...report }, timeoutMs);
        debug(`ws: DELETE ${heartbeatPath(id)} -> ${result ? httpStatusOf(result.status) : "?"} (${Date.now() - started} ms, over the agent socket)`);
        if (result?.status === "accepted") return null;
        return new CliError(
          EXIT.EDGE,
          `the edge refused the end report: ${result?.message ?? result?.status ?? "no answer"} (${result ? codeOf(result.status) : "?"})`,
        );
      } catch (err) {
        // Closed or silent: say it over HTTP instead.
        debug(`end report for ${id} over the agent socket failed (${err instanceof Error ? err.message : String(err)}); using HTTP`);
      }
    }
    try {
      await this.#client.request(heartbeatPath(id), { method: "DELETE", json: report satisfies EndReport, timeoutMs });
      return null;
    } catch (err) {
      debug(`end report for ${id} failed: ${err instanceof Error ? err.message : String(err)}`);
      if (err instanceof CliError) return err;
      if (err instanceof EdgeError) return new CliError(EXIT.EDGE, `the edge refused the end report: ${err.message} (${err.code})`);
      return new CliError(EXIT.FAILURE, String(err));
    }
  }

  #schedule(ms: number): void {
    if (!this.#running) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#inFlight = this.#beat().finally(() => (this.#inFlight = null));
    }, ms);
  }

  async #beat(): Promise<void> {
    const sessions = [...this.#sessions.values()];
    if (sessions.length === 0) return this.#schedule(this.#interval * 1000);
    try {
      let body: BeatBody | null = null;
      if (this.#socket?.open) {
        try {
          body = await this.#socketBeat(sessions);
        } catch (err) {
          // This beat goes over HTTP; the socket reconnects on its own.
          debug(`heartbeat over the agent socket failed (${err instanceof Error ? err.message : String(err)}); using HTTP`);
        }
      } else this.#socket?.connect();
      if (body) {
        // Answered over the socket.
      } else if (sessions.length === 1) {
        body = await this.#client.request<HeartbeatAnswer>(heartbeatPath(sessions[0]!.id), { json: payload(sessions[0]!), timeoutMs: 5000 });
      } else {
        const batch: HeartbeatBatchBody = { sessions: sessions.map((s) => ({ id: s.id, ...payload(s) })) };
        body = await this.#client.request<HeartbeatBatchAnswer>(PATHS.heartbeat, { json: batch, timeoutMs: 5000 });
      }
      if (typeof body?.interval === "number" && Number.isFinite(body.interval)) {
        this.#interval = Math.min(MAX_INTERVAL_S, Math.max(MIN_INTERVAL_S, body.interval));
      }
      // A batch is answered per session: a refusal of one says nothing about the others.
      const refused = (body?.sessions ?? []).filter((r): r is Refused => r.status === "rejected" && r.error.code !== "RATE_LIMITED");
      for (const r of refused) {
        if (this.#refusedIds.has(r.id)) continue;
        this.#refusedIds.add(r.id);
        this.#onEvent({ type: "rejected", error: new CliError(EXIT.EDGE, `the edge refused the heartbeat for ${r.id}: ${r.error.message} (${r.error.code})`) });
      }
      for (const r of body?.sessions ?? []) if (r.status === "accepted") this.#refusedIds.delete(r.id);
      const recovered = this.#state === "down" || this.#state === "rejected";
      if (this.#state !== "up") this.#onEvent({ type: "up", interval: this.#interval, recovered });
      this.#state = "up";
      this.#failures = 0;
      this.#schedule(this.#interval * 1000);
    } catch (err) {
      this.#failed(err);
    }
  }

  /** One beat over the agent socket, answered per session in the shape of the HTTP batch answer. */
  async #socketBeat(sessions: HeartbeatEntry[]): Promise<BeatBody> {
    const started = Date.now();
    const results = await this.#socket!.request({ type: "heartbeat", sessions: sessions.map((s) => ({ id: s.id, ...payload(s) })) }, 5000);
    // The line an HTTP beat would have logged (one session: its own route and status; several: the batch route),
    // marked as sent over the socket.
    const path = sessions.length === 1 ? heartbeatPath(sessions[0]!.id) : PATHS.heartbeat;
    const status = sessions.length === 1 && results[0] ? httpStatusOf(results[0].status) : 200;
    debug(`ws: POST ${path} -> ${status} (${Date.now() - started} ms, over the agent socket)`);
    const interval = results.find((r) => typeof r.interval === "number")?.interval;
    return {
      ...(interval !== undefined ? { interval } : {}),
      sessions: results.map((r) => {
        const code = codeOf(r.status);
        return code === null
          ? { id: r.id ?? "", status: "accepted" }
          : { id: r.id ?? "", status: "rejected", error: { code, message: r.message ?? r.status, ...(r.retryAfter ? { retryAfter: r.retryAfter } : {}) } };
      }),
    };
  }

  #failed(err: unknown): void {
    const intervalMs = this.#interval * 1000;
    if (err instanceof EdgeError && err.status === 429) {
      // Too fast for the edge: wait as told, without calling it an outage.
      this.#schedule(Math.max(1000, (err.retryAfter ?? this.#interval) * 1000));
      return;
    }
    const rejected =
      (err instanceof EdgeError && err.status >= 400 && err.status < 500) ||
      (err instanceof CliError && (err.exitCode === EXIT.AUTH || err.exitCode === EXIT.CONFIG));
    if (rejected) {
      // Refused (signed out, revoked, bad request): tell once, keep trying each interval in case it is fixed.
      if (this.#state !== "rejected") {
        const error =
          err instanceof CliError ? err : new CliError(EXIT.EDGE, `the edge refused the heartbeat: ${(err as EdgeError).message} (${(err as EdgeError).code})`);
        this.#onEvent({ type: "rejected", error });
      }
      this.#state = "rejected";
      this.#schedule(intervalMs);
      return;
    }
    // Unreachable or failing: exponential backoff with jitter, never longer than one interval.
    this.#failures++;
    const ceiling = Math.min(intervalMs, this.#backoffBaseMs * 2 ** (this.#failures - 1));
    const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    if (this.#state !== "down") {
      const reason = err instanceof CliError || err instanceof EdgeError ? err.message : String(err);
      this.#onEvent({ type: "down", reason, retryInMs: delay });
    }
    this.#state = "down";
    this.#schedule(delay);
  }
}

function payload(s: HeartbeatEntry): HeartbeatBody {
  const { id: _id, ...rest } = s;
  return rest;
}
