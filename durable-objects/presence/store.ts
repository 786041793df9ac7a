// The hub's SQLite tables (sessions, the append-only event log, the outbox, settings) and every query on them.
import { LOG_MAX_AGE_MS, LOG_MAX_EVENTS, OUTBOX_MAX_AGE_MS, ENDED_RETENTION_MS, type EventType, type PresenceEvent, type SessionRecord } from "./model.ts";

type Row = Record<string, SqlStorageValue>;
type SessionRow = {
  id: string;
  owner_sub: string;
  owner_email: string;
  status: SessionRecord["status"];
  name: string | null;
  hostname: string | null;
  pid: number | null;
  started_at: number | null;
  meta: string | null;
  created_at: number;
  last_heartbeat: number;
  ended_at: number | null;
  reason: string | null;
  exit_code: number | null;
  timeline: string;
};
type EventRow = { seq: number; type: EventType; session_id: string | null; at: number; data: string };
type OutboxRow = { seq: number; event: string };

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, owner_sub TEXT NOT NULL, owner_email TEXT NOT NULL, status TEXT NOT NULL,
    name TEXT, hostname TEXT, pid INTEGER, started_at INTEGER, meta TEXT,
    created_at INTEGER NOT NULL, last_heartbeat INTEGER NOT NULL,
    ended_at INTEGER, reason TEXT, exit_code INTEGER, timeline TEXT NOT NULL);
  -- Each new session counts its owner's live ones; without this a hub with many sessions scans them all.
  CREATE INDEX IF NOT EXISTS sessions_by_owner ON sessions(owner_sub, status);
  -- AUTOINCREMENT: a seq is never reused, even once the log has been pruned empty, so resuming clients never
  -- mistake a new event for one they have seen.
  CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, session_id TEXT, at INTEGER NOT NULL, data TEXT NOT NULL);
  -- The wire form of each event not yet acknowledged by the origin; kept apart from the log because the log is
  -- pruned after 24 hours while the origin may stay offline for days.
  CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, event TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value);
`;

export class PresenceStore {
  readonly #sql: SqlStorage;
  readonly #hubId: string;
  /** Every row this hub has written since it started: the number the cost tests hold down. */
  rowsWritten = 0;

  constructor(sql: SqlStorage, hubId: string) {
    this.#sql = sql;
    this.#hubId = hubId;
    this.#sql.exec(SCHEMA);
  }

  #exec<T extends Row = Row>(query: string, ...params: SqlStorageValue[]): T[] {
    const cursor = this.#sql.exec<T>(query, ...params);
    const rows = cursor.toArray();
    this.rowsWritten += cursor.rowsWritten;
    return rows;
  }

  #one<T extends Row = Row>(query: string, ...params: SqlStorageValue[]): T | null {
    return this.#exec<T>(query, ...params)[0] ?? null;
  }

  // --- sessions ---

  getSession(id: string): SessionRecord | null {
    const row = this.#one<SessionRow>("SELECT * FROM sessions WHERE id = ?", id);
    return row ? toSession(row) : null;
  }

  /** Live sessions with their stored last heartbeat: what a cold start rebuilds its memory from. */
  activeSessions(): { id: string; lastHeartbeat: number }[] {
    return this.#exec<Pick<SessionRow, "id" | "last_heartbeat">>("SELECT id, last_heartbeat FROM sessions WHERE status IN ('working', 'idle')").map((r) => ({
      id: r.id,
      lastHeartbeat: r.last_heartbeat,
    }));
  }

  liveCountOf(ownerSub: string): number {
    return this.#one<{ n: number }>("SELECT COUNT(*) AS n FROM sessions WHERE owner_sub = ? AND status IN ('working', 'idle')", ownerSub)?.n ?? 0;
  }

  /** Newest first; live sessions and those ended within the retention window. */
  listSessions(limit: number): SessionRecord[] {
    return this.#exec<SessionRow>("SELECT * FROM sessions ORDER BY created_at DESC, id LIMIT ?", limit).map(toSession);
  }

  putSession(s: SessionRecord): void {
    this.#exec(
      `INSERT INTO sessions (id, owner_sub, owner_email, status, name, hostname, pid, started_at, meta, created_at,
         last_heartbeat, ended_at, reason, exit_code, timeline) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
       ON CONFLICT(id) DO UPDATE SET status = excluded.status, name = excluded.name, hostname = excluded.hostname,
         pid = excluded.pid, started_at = excluded.started_at, meta = excluded.meta, last_heartbeat = excluded.last_heartbeat,
         ended_at = excluded.ended_at, reason = excluded.reason, exit_code = excluded.exit_code, timeline = excluded.timeline`,
      s.id,
      s.ownerSub,
      s.ownerEmail,
      s.status,
      s.name,
      s.hostname,
      s.pid,
      s.startedAt,
      s.meta === null ? null : JSON.stringify(s.meta),
      s.createdAt,
      s.lastHeartbeat,
      s.endedAt,
      s.reason,
      s.exitCode,
      JSON.stringify(s.timeline),
    );
  }

  pruneEndedSessions(now: number): void {
    this.#exec("DELETE FROM sessions WHERE status IN ('ended', 'failed') AND ended_at < ?", now - ENDED_RETENTION_MS);
  }

  // --- event log and outbox ---

  /** Appends to the log and queues for the origin in one go; the caller holds the transaction. */
  appendEvent(type: EventType, sessionId: string | null, at: number, data: Record<string, unknown>): PresenceEvent {
    const json = JSON.stringify(data);
    const [row] = this.#exec<Pick<EventRow, "seq">>(
      "INSERT INTO events (type, session_id, at, data) VALUES (?,?,?,?) RETURNING seq",
      type,
      sessionId,
      at,
      json,
    );
    const seq = row!.seq;
    const event: PresenceEvent = { id: `${this.#hubId}:${seq}`, seq, type, sessionId, at: new Date(at).toISOString(), data };
    this.#exec("INSERT INTO outbox (seq, at, event) VALUES (?,?,?)", seq, at, JSON.stringify(event));
    // Trimming by count here keeps the log bounded even if the alarm never gets to prune it; usually deletes nothing.
    if (seq > LOG_MAX_EVENTS) this.#exec("DELETE FROM events WHERE seq <= ?", seq - LOG_MAX_EVENTS);
    return event;
  }

  /** The highest seq ever issued (0 before the first event), whether or not it is still in the log. */
  lastSeq(): number {
    return this.#one<{ seq: number }>("SELECT seq FROM sqlite_sequence WHERE name = 'events'")?.seq ?? 0;
  }

  /** The oldest seq still in the log, or null when the log is empty. */
  firstLogSeq(): number | null {
    return this.#one<{ s: number | null }>("SELECT MIN(seq) AS s FROM events")?.s ?? null;
  }

  eventsAfter(seq: number): PresenceEvent[] {
    return this.#exec<EventRow>("SELECT * FROM events WHERE seq > ? ORDER BY seq", seq).map((r) => ({
      id: `${this.#hubId}:${r.seq}`,
      seq: r.seq,
      type: r.type,
      sessionId: r.session_id,
      at: new Date(r.at).toISOString(),
      data: JSON.parse(r.data) as Record<string, unknown>,
    }));
  }

  /** Drops events older than 24 hours, always a prefix of the log so what remains has no gaps. */
  pruneLog(now: number): void {
    const cut = this.#one<{ s: number | null }>("SELECT MAX(seq) AS s FROM events WHERE at < ?", now - LOG_MAX_AGE_MS)?.s ?? null;
    if (cut !== null) this.#exec("DELETE FROM events WHERE seq <= ?", cut);
  }

  hasOutbox(): boolean {
    return this.#one("SELECT 1 AS x FROM outbox LIMIT 1") !== null;
  }

  outboxDepth(): number {
    return this.#one<{ n: number }>("SELECT COUNT(*) AS n FROM outbox")?.n ?? 0;
  }

  /** The oldest queued events in seq order, each already in its exact wire form. */
  outboxBatch(limit: number): { seq: number; event: string }[] {
    return this.#exec<OutboxRow>("SELECT seq, event FROM outbox ORDER BY seq LIMIT ?", limit);
  }

  /** The origin acknowledged everything up to `seq`. */
  ackOutbox(seq: number): void {
    this.#exec("DELETE FROM outbox WHERE seq <= ?", seq);
    this.setMeta("delivered_seq", seq);
  }

  /** Drops what waited longer than 7 days and returns how many; the total is kept for stats. */
  dropStaleOutbox(now: number): number {
    const dropped = this.#exec("DELETE FROM outbox WHERE at < ? RETURNING seq", now - OUTBOX_MAX_AGE_MS).length;
    if (dropped > 0) this.setMeta("outbox_dropped", (this.metaNumber("outbox_dropped") ?? 0) + dropped);
    return dropped;
  }

  // --- meta ---

  /** A numeric entry, or null when it is not set. */
  metaNumber(key: string): number | null {
    const value = this.#one("SELECT value FROM meta WHERE key = ?", key)?.value;
    return typeof value === "number" ? value : null;
  }

  /** A text entry, or null when it is not set. */
  metaText(key: string): string | null {
    const value = this.#one("SELECT value FROM meta WHERE key = ?", key)?.value;
    return typeof value === "string" ? value : null;
  }

  setMeta(key: string, value: SqlStorageValue): void {
    this.#exec("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", key, value);
  }

  deleteMeta(key: string): void {
    this.#exec("DELETE FROM meta WHERE key = ?", key);
  }
}

function toSession(r: SessionRow): SessionRecord {
  return {
    id: r.id,
    ownerSub: r.owner_sub,
    ownerEmail: r.owner_email,
    status: r.status,
    name: r.name,
    hostname: r.hostname,
    pid: r.pid,
    startedAt: r.started_at,
    meta: r.meta === null ? null : (JSON.parse(r.meta) as SessionRecord["meta"]),
    createdAt: r.created_at,
    lastHeartbeat: r.last_heartbeat,
    endedAt: r.ended_at,
    reason: r.reason,
    exitCode: r.exit_code,
    timeline: JSON.parse(r.timeline) as SessionRecord["timeline"],
  };
}
