// The presence hub: one Durable Object per deployment's origin, authoritative for which agent sessions are alive.
import { accountStub } from "../account/index.ts";
import { DurableObject } from "cloudflare:workers";
import { presenceSettings } from "../../shared/settings/index.ts";
import {
  MAX_LIVE_SESSIONS_PER_OWNER,
  MIN_BEAT_GAP_MS,
  isActive,
  toView,
  type Caller,
  type HeartbeatInput,
  type HeartbeatResult,
  type Refusal,
  type SessionRecord,
  type SessionView,
  type TimelineEntry,
} from "./model.ts";
import type { OriginLinkView } from "../../shared/api-types.ts";
import type { ExitReport } from "../../shared/presence.ts";
import { answerAgent, closeQuietly, POLICY_VIOLATION } from "./agents.ts";
import { OriginWatch } from "./origin-watch.ts";
import { Outbox } from "./outbox.ts";
import { eventMessage, openSocket, Watchers, type Snapshot } from "./sockets.ts";
import { PresenceStore } from "./store.ts";
import { applyBeat, applyExit, applyExpiry, isFinal, type Change } from "./transitions.ts";

const LIST_LIMIT = 1000;

export interface HubStats {
  rowsWritten: number;
  alarmSets: number;
  heartbeats: number;
  alarmRuns: number;
  lastSeq: number;
  outboxDepth: number;
  outboxDropped: number;
  delivered: number;
  live: number;
  watchers: number;
  agents: number;
  links: number;
}

export class PresenceHub extends DurableObject<Env> {
  readonly #store: PresenceStore;
  readonly #outbox: Outbox;
  readonly #watchers: Watchers;
  readonly #origin: OriginWatch;
  readonly #ttlMs: number;
  readonly #intervalS: number;
  /**
   * Live sessions and when each was last seen: the only record of most heartbeats, which write nothing. After a cold
   * start it holds the wake-up time instead, so a restart never expires an agent whose last beats were in memory.
   */
  readonly #lastSeen = new Map<string, number>();
  /** The last real heartbeat per session (never the wake-up time): the 1/s limit and `lastHeartbeat` use it. */
  readonly #lastBeat = new Map<string, number>();
  #alarmAt: number | null = null;
  /** A wake-up grace is recorded in storage; the first heartbeat after it clears it. */
  #graceRecorded = false;
  #resident: ReturnType<typeof setTimeout> | null = null;
  #alarmSets = 0;
  #heartbeats = 0;
  #alarmRuns = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#store = new PresenceStore(ctx.storage.sql, ctx.id.toString());
    this.#outbox = new Outbox(this.#store, env);
    this.#watchers = new Watchers(ctx);
    this.#origin = new OriginWatch(ctx, this.#store, this.#watchers, this.#outbox);
    this.#ttlMs = presenceSettings(env).ttlSeconds * 1000;
    this.#intervalS = presenceSettings(env).intervalSeconds;
    void ctx.blockConcurrencyWhile(() => this.#wake());
  }

  /** Rebuilds memory after a cold start: live sessions count as seen now, unless an earlier wake-up already said so. */
  async #wake(): Promise<void> {
    const now = Date.now();
    this.#alarmAt = await this.ctx.storage.getAlarm();
    const live = this.#store.activeSessions();
    // Without this record, a hub restarted again and again before any heartbeat arrives (a deploy loop, an eviction
    // right after each alarm) would push every expiry back forever; with it the grace is one TTL from the first wake-up.
    let from = this.#store.metaNumber("grace_from");
    if (live.length === 0 && from !== null) {
      // Left over from sessions that have since ended: it must not cut short the grace of sessions yet to come.
      this.#store.deleteMeta("grace_from");
    } else if (live.length > 0) {
      if (from === null) {
        from = now;
        this.#store.setMeta("grace_from", now);
      }
      this.#graceRecorded = true;
      for (const s of live) this.#lastSeen.set(s.id, Math.max(s.lastHeartbeat, from));
    }
    const next = this.#nextDue(now);
    if (next !== null) await this.#ensureAlarm(next);
    this.#keepResident();
  }

  // --- RPC for the Worker ---

  /** One heartbeat or a process's batch; each session is answered on its own and a refusal changes nothing. */
  async heartbeat(caller: Caller, inputs: HeartbeatInput[]): Promise<HeartbeatResult[]> {
    const now = Date.now();
    const results: HeartbeatResult[] = [];
    let changed = false;
    let cameOnline = false;
    for (const input of inputs) {
      this.#heartbeats++;
      const row = this.#store.getSession(input.id);
      const refusal = this.#refuseBeat(row, input.id, caller, now);
      if (refusal) {
        results.push({ id: input.id, ok: false, ...refusal });
        continue;
      }
      const change = applyBeat(row, input, caller, now);
      if (change) {
        this.#commit(change, now);
        changed = true;
        cameOnline ||= change.cameOnline;
      }
      this.#lastSeen.set(input.id, now);
      this.#lastBeat.set(input.id, now);
      results.push({ id: input.id, ok: true, expiresAt: now + this.#ttlMs });
    }
    if (this.#graceRecorded && results.some((r) => r.ok)) {
      this.#store.deleteMeta("grace_from");
      this.#graceRecorded = false;
    }
    // A heartbeat that changed nothing leaves the alarm alone: the alarm finds the session still alive and moves on.
    const due = Math.min(cameOnline ? now + this.#ttlMs : Infinity, changed ? (this.#outbox.dueAt(now) ?? now) : Infinity);
    if (due !== Infinity) await this.#ensureAlarm(due);
    this.#keepResident();
    return results;
  }

  #refuseBeat(row: SessionRecord | null, id: string, caller: Caller, now: number): Refusal | null {
    if (row && row.ownerSub !== caller.sub) return { code: "FORBIDDEN", message: "This session belongs to another user." };
    const last = this.#lastBeat.get(id);
    if (last !== undefined && now - last < MIN_BEAT_GAP_MS) {
      return {
        code: "RATE_LIMITED",
        message: "At most one heartbeat per second per session.",
        retryAfter: Math.max(1, Math.ceil((last + MIN_BEAT_GAP_MS - now) / 1000)),
      };
    }
    if (row && isFinal(row)) return { code: "CONFLICT", message: "This session has ended; start a new one with a new id." };
    if (!row && this.#store.liveCountOf(caller.sub) >= MAX_LIVE_SESSIONS_PER_OWNER) {
      return { code: "RATE_LIMITED", message: `At most ${MAX_LIVE_SESSIONS_PER_OWNER} live sessions per user.`, retryAfter: this.#ttlMs / 1000 };
    }
    return null;
  }

  /** The process exited: the session ends now (failed for a non-zero exit code) instead of waiting for the TTL. */
  async end(caller: Caller, id: string, exit: ExitReport): Promise<{ ok: true } | ({ ok: false } & Refusal)> {
    const now = Date.now();
    const row = this.#store.getSession(id);
    if (!row) return { ok: false, code: "NOT_FOUND", message: "No such session." };
    if (row.ownerSub !== caller.sub) return { ok: false, code: "FORBIDDEN", message: "This session belongs to another user." };
    const change = applyExit(row, exit, this.#lastBeat.get(id) ?? 0, now);
    if (change) {
      this.#commit(change, now);
      await this.#ensureAlarm(this.#outbox.dueAt(now) ?? now);
    }
    return { ok: true };
  }

  async get(id: string): Promise<{ alive: boolean; data: (SessionView & { meta: SessionRecord["meta"]; timeline: TimelineEntry[] }) | null }> {
    const row = this.#store.getSession(id);
    if (!row) return { alive: false, data: null };
    const view = this.#view(row, Date.now());
    return { alive: view.alive, data: { ...view, meta: row.meta, timeline: row.timeline } };
  }

  async list(): Promise<Snapshot & { seq: number }> {
    const now = Date.now();
    // Nobody may have been watching when a link fell silent: settle it before answering.
    this.#origin.settle(now);
    await this.#ensureDue(now);
    return { seq: this.#store.lastSeq(), ...this.#snapshot(now) };
  }

  /** What the gateway saw of the origin (call it on changes it notices, not on every request). */
  async reportOrigin(ok: boolean): Promise<void> {
    const now = Date.now();
    this.#origin.report(ok, now);
    await this.#ensureDue(now);
  }

  /** The origin links open now (GET /api/devices lists them). */
  async originLinks(): Promise<OriginLinkView[]> {
    this.#origin.settle(Date.now());
    return this.#origin.links.list();
  }

  /** A device was revoked: its sockets (phones', agents', links) close now rather than at the next sweep. */
  async closeDevice(deviceId: string): Promise<number> {
    return this.#watchers.closeDevice(deviceId);
  }

  async stats(): Promise<HubStats> {
    return {
      rowsWritten: this.#store.rowsWritten,
      alarmSets: this.#alarmSets,
      heartbeats: this.#heartbeats,
      alarmRuns: this.#alarmRuns,
      lastSeq: this.#store.lastSeq(),
      outboxDepth: this.#store.outboxDepth(),
      outboxDropped: this.#store.metaNumber("outbox_dropped") ?? 0,
      delivered: this.#outbox.delivered,
      live: this.#lastSeen.size,
      watchers: this.#watchers.count(),
      agents: this.#watchers.total() - this.#watchers.count() - this.#origin.links.count(),
      links: this.#origin.links.count(),
    };
  }

  // --- WebSockets ---

  override async fetch(request: Request): Promise<Response> {
    const now = Date.now();
    this.#origin.settle(now);
    const response = this.#origin.open(request, now) ?? openSocket(request, this.#watchers, this.#store, now, () => this.#snapshot(now));
    if (!response) return new Response("Not found", { status: 404 });
    // A socket is open: make sure the alarm comes round to probe the origin and sweep ended credentials (and, for a
    // link, to deliver the outbox at once).
    await this.#ensureDue(now);
    return response;
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    // Phones only listen, links only ping ("ping" is answered by the runtime's auto-response without waking the hub).
    if (this.#origin.links.isLink(ws)) return closeQuietly(ws, POLICY_VIOLATION, "an origin link carries only pings");
    if (!this.#watchers.isAgent(ws)) return;
    await answerAgent(ws, message, Date.now(), { ttl: this.#ttlMs / 1000, interval: this.#intervalS }, this);
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    if (this.#origin.links.isLink(ws)) {
      const now = Date.now();
      this.#origin.closed(ws, code, now);
      await this.#ensureDue(now);
    }
    this.#watchers.closed(ws, code, reason);
  }

  // --- the alarm ---

  /** Handles everything due (expiries, the origin probe, the outbox), then sets the one alarm to the next due moment. */
  override async alarm(): Promise<void> {
    this.#alarmRuns++;
    this.#alarmAt = null;
    let now = Date.now();
    this.#origin.settle(now);
    for (const [id, seen] of this.#lastSeen) {
      if (seen + this.#ttlMs > now) continue;
      // Each expiry commits on its own, so a retry after a failure picks up exactly where this run stopped.
      const change = applyExpiry(this.#store.getSession(id), this.#lastBeat.get(id) ?? 0, now);
      if (change) this.#commit(change, now);
      else this.#forget(id);
    }
    this.#store.pruneLog(now);
    this.#store.pruneEndedSessions(now);
    if ((this.#watched() || this.#origin.confirming()) && this.#origin.probeDue(now)) {
      if (this.#watchers.total() > 0) {
        await this.#watchers.closeEnded(now, async (deviceId) => {
          const device = await accountStub(this.env).getDevice(deviceId);
          return !device || device.revokedAt !== null;
        });
      }
      await this.#origin.probe(this.env, now);
    }
    if ((await this.#outbox.flush(Date.now())) > 0) this.#origin.delivered(Date.now());
    now = Date.now();
    const next = this.#nextDue(now);
    if (next === null) {
      this.#alarmAt = null;
      await this.ctx.storage.deleteAlarm();
    } else if (next !== this.#alarmAt) await this.#setAlarm(next);
    this.#keepResident();
  }

  // --- internals ---

  /** Writes a change and its event in one transaction, then tells the watchers (the output gate holds the message until the write is durable). */
  #commit(change: Change, now: number): void {
    const { record, event } = change;
    const appended = this.ctx.storage.transactionSync(() => {
      this.#store.putSession(record);
      return event ? this.#store.appendEvent(event, record.id, now, { ...this.#view(record, now) }) : null;
    });
    if (!isActive(record.status)) this.#forget(record.id);
    if (appended) this.#watchers.broadcast(eventMessage(appended), now);
  }

  #forget(id: string): void {
    this.#lastSeen.delete(id);
    this.#lastBeat.delete(id);
  }

  #view(row: SessionRecord, now: number): SessionView {
    return toView(row, { beat: this.#lastBeat.get(row.id), seen: this.#lastSeen.get(row.id) }, this.#ttlMs, now);
  }

  #snapshot(now: number): Snapshot {
    return { sessions: this.#store.listSessions(LIST_LIMIT).map((s) => this.#view(s, now)), origin: this.#origin.view() };
  }

  /**
   * Whether anyone cares about the origin's state right now: a live session, or a phone's or an agent's socket. Only
   * then do the probe and the checks of the link's pings run; an origin's link alone lets the hub sleep (its pings
   * are answered without waking it), and a state nobody watched is settled when someone next asks.
   */
  #watched(): boolean {
    return this.#lastSeen.size > 0 || this.#watchers.total() > this.#origin.links.count();
  }

  /** The earliest of: the next expiry, the next probe and link check (while anyone cares), the next outbox attempt. */
  #nextDue(now: number): number | null {
    let next = Infinity;
    for (const seen of this.#lastSeen.values()) next = Math.min(next, seen + this.#ttlMs);
    if (this.#watched() || this.#origin.confirming()) next = Math.min(next, this.#origin.dueAt(now));
    next = Math.min(next, this.#outbox.dueAt(now) ?? Infinity);
    return next === Infinity ? null : next;
  }

  async #ensureDue(now: number): Promise<void> {
    const next = this.#nextDue(now);
    if (next !== null) await this.#ensureAlarm(next);
  }

  /** Moves the alarm earlier if needed; the check and the update happen before any await, so racing calls agree. */
  #ensureAlarm(at: number): Promise<void> | void {
    if (this.#alarmAt !== null && this.#alarmAt <= at) return;
    return this.#setAlarm(at);
  }

  #setAlarm(at: number): Promise<void> {
    this.#alarmAt = at;
    this.#alarmSets++;
    return this.ctx.storage.setAlarm(at);
  }

  /**
   * While a session is live, a pending timer keeps the hub from hibernating (the runtime only hibernates an object with
   * no timers), so last-seen times survive until their expiry is checked. With nothing live, phones cost nothing.
   */
  #keepResident(): void {
    if (this.#resident !== null || this.#lastSeen.size === 0) return;
    this.#resident = setTimeout(() => {
      this.#resident = null;
      this.#keepResident();
    }, this.#ttlMs);
  }
}
