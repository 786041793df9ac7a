// The origin's SQLite database (node:sqlite): schema, transactions, row shapes and a change feed for the event stream.
import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { DatabaseSync as Database, SQLInputValue, SQLOutputValue, StatementSync } from "node:sqlite";
import type { TimelineEntry } from "../shared/events.ts";

// node:sqlite is stable enough for this and announces itself as experimental on every start: keep that one line quiet.
const emitWarning = process.emitWarning;
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  if (String(warning).includes("SQLite is an experimental feature")) return;
  (emitWarning as (...args: unknown[]) => void).call(process, warning, ...rest);
}) as typeof process.emitWarning;
const { DatabaseSync } = await import("node:sqlite").finally(() => {
  process.emitWarning = emitWarning;
});

export type Row = Record<string, SQLOutputValue>;

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS projects (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
    created_by TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, project_id TEXT REFERENCES projects(id), name TEXT, status TEXT NOT NULL,
    reason TEXT, exit_code INTEGER, hostname TEXT, pid INTEGER, owner TEXT, started_at INTEGER, ended_at INTEGER,
    -- The presence event that set the current status: an older one arriving late only joins the timeline.
    status_hub TEXT, status_seq INTEGER, status_at INTEGER,
    timeline TEXT NOT NULL DEFAULT '[]', created_by TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY, project_id TEXT NOT NULL REFERENCES projects(id), session_id TEXT REFERENCES sessions(id),
    title TEXT NOT NULL, description TEXT NOT NULL DEFAULT '', status TEXT NOT NULL,
    created_by TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
  CREATE INDEX IF NOT EXISTS tasks_by_project ON tasks (project_id, created_at);
  -- Every presence event the edge delivered, by its stable id: what makes delivery exactly-once.
  CREATE TABLE IF NOT EXISTS edge_events (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, type TEXT NOT NULL, session_id TEXT, at INTEGER NOT NULL,
    data TEXT NOT NULL, received_at INTEGER NOT NULL);
`;

/** What changed, for subscribers of the WebSocket event stream; sent only after the change committed. */
export interface Change {
  type: string;
  data: unknown;
}

export type ChangeListener = (change: Change) => void;

export class Store {
  readonly db: Database;
  readonly file: string;
  #statements = new Map<string, StatementSync>();
  #listeners = new Set<ChangeListener>();
  #pending: Change[] | null = null;

  constructor(file: string) {
    this.file = file;
    // Session names, hostnames and task text are nobody else's business on a shared machine.
    if (file !== ":memory:") mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    this.db = new DatabaseSync(file, { enableForeignKeyConstraints: true, timeout: 5_000 });
    // WAL with NORMAL sync: a committed transaction survives the process being killed (not a power cut mid-write).
    this.db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
    this.db.exec(SCHEMA);
  }

  close(): void {
    this.#listeners.clear();
    if (this.db.isOpen) this.db.close();
  }

  #prepare(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  all(sql: string, ...params: SQLInputValue[]): Row[] {
    return this.#prepare(sql).all(...params);
  }

  get(sql: string, ...params: SQLInputValue[]): Row | null {
    return this.#prepare(sql).get(...params) ?? null;
  }

  run(sql: string, ...params: SQLInputValue[]): number {
    return Number(this.#prepare(sql).run(...params).changes);
  }

  /** Runs fn in one write transaction; changes it emits reach subscribers only once it committed. */
  tx<T>(fn: () => T): T {
    if (this.#pending) return fn();
    this.#pending = [];
    this.db.exec("BEGIN IMMEDIATE");
    let changes: Change[];
    try {
      const result = fn();
      this.db.exec("COMMIT");
      changes = this.#pending;
      this.#pending = null;
      for (const change of changes) this.#notify(change);
      return result;
    } catch (err) {
      this.#pending = null;
      if (this.db.isTransaction) this.db.exec("ROLLBACK");
      throw err;
    }
  }

  emit(change: Change): void {
    if (this.#pending) this.#pending.push(change);
    else this.#notify(change);
  }

  subscribe(listener: ChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #notify(change: Change): void {
    for (const listener of this.#listeners) {
      try {
        listener(change);
      } catch {
        // a broken subscriber must not break the write that notified it
      }
    }
  }
}

/** A random id with a readable prefix, e.g. prj_3k9x…; 96 bits. */
export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(12).toString("base64url")}`;
}

function iso(ms: SQLOutputValue | undefined): string | null {
  return typeof ms === "number" ? new Date(ms).toISOString() : null;
}

const str = (v: SQLOutputValue | undefined): string | null => (typeof v === "string" ? v : null);
const num = (v: SQLOutputValue | undefined): number | null => (typeof v === "number" ? v : null);

/** The origin's timeline entries name presence events (or "created") and may be "pending". */
export type OriginTimelineEntry = TimelineEntry<string, string>;

export function projectJson(r: Row) {
  return {
    id: r.id as string,
    name: r.name as string,
    description: r.description as string,
    createdBy: r.created_by as string,
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
  };
}

export function taskJson(r: Row) {
  return {
    id: r.id as string,
    projectId: r.project_id as string,
    sessionId: str(r.session_id),
    title: r.title as string,
    description: r.description as string,
    status: r.status as string,
    createdBy: r.created_by as string,
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
  };
}

export function sessionJson(r: Row, withTimeline = false) {
  return {
    id: r.id as string,
    projectId: str(r.project_id),
    name: str(r.name),
    status: r.status as string,
    reason: str(r.reason),
    exitCode: num(r.exit_code),
    hostname: str(r.hostname),
    pid: num(r.pid),
    owner: str(r.owner),
    startedAt: iso(r.started_at),
    endedAt: iso(r.ended_at),
    lastEventAt: iso(r.status_at),
    createdBy: r.created_by as string,
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
    ...(withTimeline ? { timeline: JSON.parse(r.timeline as string) as OriginTimelineEntry[] } : {}),
  };
}

/** ./.outpost/origin.db under the data directory; ":memory:" keeps nothing on disk. */
export function databaseFile(dataDir: string): string {
  return dataDir === ":memory:" ? ":memory:" : `${dataDir.replace(/[\\/]+$/, "")}/origin.db`;
}
