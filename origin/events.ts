// POST /outpost/events: the edge's presence events, body-hash checked, each applied exactly once, acknowledged once stored.
import { createHash } from "node:crypto";
import { Hono } from "hono";
import { isActive } from "../shared/api-types.ts";
import { OutpostError } from "../shared/errors.ts";
import {
  DISCONNECTED,
  EDGE_ROLE,
  EDGE_SUBJECT,
  EVENTS_PATH,
  MAX_EVENTS_BYTES,
  MAX_EVENTS_PER_BATCH,
  TIMELINE_MAX,
  type BatchResult,
  type PresenceEvent,
} from "../shared/events.ts";
import { invalid, type OriginVars } from "./api/validate.ts";
import { sessionJson, type OriginTimelineEntry as TimelineEntry, type Row, type Store } from "./store.ts";
import { OutpostVerifyError } from "./verify.ts";

/** An event as the origin accepts it: any lower-case type, so a newer edge's events are stored rather than refused. */
type EdgeEvent = PresenceEvent<string>;

function fail(index: number, what: string): never {
  throw invalid(`events[${index}]: ${what}`);
}

/** Validates the whole batch before anything is stored: one bad event refuses the batch (400) and stores nothing. */
function parseBatch(text: string): EdgeEvent[] {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new OutpostError("INVALID_JSON", "The body is not valid JSON.");
  }
  const events = (body as { events?: unknown } | null)?.events;
  if (!Array.isArray(events)) throw invalid('The body must be {"events":[...]}.');
  if (events.length > MAX_EVENTS_PER_BATCH) throw invalid(`At most ${MAX_EVENTS_PER_BATCH} events per batch.`);
  return events.map((raw: unknown, i): EdgeEvent => {
    if (!raw || typeof raw !== "object" || Array.isArray(raw)) fail(i, "must be an object");
    const e = raw as Record<string, unknown>;
    if (typeof e.id !== "string" || e.id.length === 0 || e.id.length > 200) fail(i, "id must be a string of 1-200 characters");
    if (typeof e.seq !== "number" || !Number.isSafeInteger(e.seq) || e.seq < 0) fail(i, "seq must be a non-negative integer");
    if (typeof e.type !== "string" || !/^[a-z][a-z0-9_.]{0,63}$/.test(e.type)) fail(i, "type must be a lower-case event name");
    if (e.sessionId !== null && (typeof e.sessionId !== "string" || e.sessionId.length === 0 || e.sessionId.length > 200)) {
      fail(i, "sessionId must be a string of 1-200 characters or null");
    }
    if (typeof e.at !== "string" || !Number.isFinite(Date.parse(e.at))) fail(i, "at must be an ISO date");
    const data = e.data ?? {};
    if (typeof data !== "object" || Array.isArray(data) || data === null) fail(i, "data must be an object");
    return { id: e.id, seq: e.seq, type: e.type, sessionId: (e.sessionId as string | null) ?? null, at: e.at, data: data as Record<string, unknown> };
  });
}

const hubOf = (id: string) => id.slice(0, Math.max(0, id.lastIndexOf(":")));
/** Orders timeline entries of the same millisecond by their event's seq ("hub:seq"); entries made here sort first. */
const seqOf = (entry: TimelineEntry) => (entry.eventId ? Number(entry.eventId.slice(entry.eventId.lastIndexOf(":") + 1)) || 0 : 0);
/** Delivered ids are kept well past the 7 days the edge keeps undelivered events, then pruned. */
const EVENT_IDS_KEPT_MS = 30 * 24 * 60 * 60 * 1000;
const pruned = new WeakMap<Store, number>();
const strOr = (v: unknown, fallback: string | null): string | null => (typeof v === "string" && v ? v.slice(0, 500) : fallback);
const intOr = (v: unknown, fallback: number | null): number | null => (typeof v === "number" && Number.isSafeInteger(v) ? v : fallback);
const timeOr = (v: unknown, fallback: number | null): number | null =>
  typeof v === "number" && Number.isFinite(v) ? v : typeof v === "string" && Number.isFinite(Date.parse(v)) ? Date.parse(v) : fallback;

/** Status, reason and exit code after an event, given the status before it; null for events that do not set one. */
function transition(e: EdgeEvent, d: Record<string, unknown>, before: string): { status: string; reason: string | null; exitCode: number | null } | null {
  const active = typeof d.status === "string" && isActive(d.status) ? d.status : null;
  switch (e.type) {
    case "session_online":
      return { status: active ?? "working", reason: null, exitCode: null };
    case "session_updated":
      return { status: active ?? (before === "idle" ? "idle" : "working"), reason: null, exitCode: null };
    case "session_expired":
      return { status: "failed", reason: DISCONNECTED, exitCode: null };
    case "session_failed":
      return { status: "failed", reason: strOr(d.reason, "failed"), exitCode: intOr(d.exitCode, null) };
    case "session_ended":
      return { status: "ended", reason: strOr(d.reason, null), exitCode: intOr(d.exitCode, null) };
    default:
      return null;
  }
}

/** Applies one presence event to its session; an event older than the one that set the status only joins the timeline. */
function applyPresence(store: Store, e: EdgeEvent, now: number): void {
  if (!e.sessionId) return;
  const at = Date.parse(e.at);
  const d = (e.data.session && typeof e.data.session === "object" ? e.data.session : e.data) as Record<string, unknown>;
  let row: Row | null = store.get("SELECT * FROM sessions WHERE id = ?", e.sessionId);
  if (!row) {
    store.run(
      "INSERT INTO sessions (id, status, timeline, created_by, created_at, updated_at) VALUES (?, 'pending', '[]', ?, ?, ?)",
      e.sessionId,
      EDGE_SUBJECT,
      now,
      now,
    );
    row = store.get("SELECT * FROM sessions WHERE id = ?", e.sessionId)!;
  }
  const hub = hubOf(e.id);
  const lastSeq = row.status_seq as number | null;
  const lastAt = row.status_at as number | null;
  const newer = lastAt === null || (hub === row.status_hub && lastSeq !== null ? e.seq > lastSeq : at >= lastAt);
  const next = transition(e, d, row.status as string);

  const timeline = JSON.parse(row.timeline as string) as TimelineEntry[];
  const entry: TimelineEntry = { at: new Date(at).toISOString(), event: e.type, status: next?.status ?? (row.status as string), eventId: e.id };
  if (next?.reason) entry.reason = next.reason;
  if (next?.exitCode !== null && next?.exitCode !== undefined) entry.exitCode = next.exitCode;
  timeline.push(entry);
  timeline.sort((a, b) => Date.parse(a.at) - Date.parse(b.at) || seqOf(a) - seqOf(b));
  const kept = timeline.slice(-TIMELINE_MAX);

  const apply = newer && next !== null;
  const ended = apply && (next.status === "ended" || next.status === "failed");
  store.run(
    `UPDATE sessions SET status = ?, reason = ?, exit_code = ?, ended_at = ?, status_hub = ?, status_seq = ?, status_at = ?,
       name = ?, hostname = ?, pid = ?, owner = ?, started_at = ?, timeline = ?, updated_at = ? WHERE id = ?`,
    apply ? next.status : (row.status as string),
    apply ? next.reason : (row.reason as string | null),
    apply ? next.exitCode : (row.exit_code as number | null),
    apply ? (ended ? at : null) : (row.ended_at as number | null),
    newer ? hub : (row.status_hub as string | null),
    newer ? e.seq : lastSeq,
    newer ? at : lastAt,
    newer ? strOr(d.name, row.name as string | null) : ((row.name as string | null) ?? strOr(d.name, null)),
    strOr(d.hostname, row.hostname as string | null),
    intOr(d.pid, row.pid as number | null),
    strOr(d.owner ?? d.ownerEmail ?? d.email, row.owner as string | null),
    timeOr(d.startedAt, row.started_at as number | null),
    JSON.stringify(kept),
    now,
    e.sessionId,
  );
  store.emit({ type: "session.updated", data: sessionJson(store.get("SELECT * FROM sessions WHERE id = ?", e.sessionId)!) });
}

/** Stores and applies a batch in one transaction: all of it or (on a crash or error) none of it. Seen ids are skipped. */
function storeBatch(store: Store, events: EdgeEvent[], now = Date.now()): BatchResult {
  if (now - (pruned.get(store) ?? 0) > 60 * 60 * 1000) {
    pruned.set(store, now);
    store.run("DELETE FROM edge_events WHERE received_at < ?", now - EVENT_IDS_KEPT_MS);
  }
  return store.tx(() => {
    const result: BatchResult = { acked: [], applied: 0, duplicates: 0 };
    for (const e of events) {
      const inserted = store.run(
        "INSERT INTO edge_events (id, seq, type, session_id, at, data, received_at) VALUES (?,?,?,?,?,?,?) ON CONFLICT(id) DO NOTHING",
        e.id,
        e.seq,
        e.type,
        e.sessionId,
        Date.parse(e.at),
        JSON.stringify(e.data),
        now,
      );
      if (inserted === 0) result.duplicates++;
      else {
        applyPresence(store, e, now);
        store.emit({ type: `presence.${e.type}`, data: e });
        result.applied++;
      }
      result.acked.push(e.id);
    }
    return result;
  });
}

function base64urlSha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("base64url");
}

export const edgeEvents = new Hono<{ Variables: OriginVars }>();

edgeEvents.post(EVENTS_PATH, async (c) => {
  const identity = c.get("identity");
  if (identity.sub !== EDGE_SUBJECT || identity.role !== EDGE_ROLE) throw new OutpostError("FORBIDDEN", "Only the edge delivers events.");
  // The assertion must sign this very body; without the hash, anyone replaying a header could post any batch.
  if (!identity.bodySha256) throw new OutpostVerifyError("no body_sha256");
  if (Number(c.req.header("content-length") ?? "0") > MAX_EVENTS_BYTES) throw new OutpostError("PAYLOAD_TOO_LARGE", "The batch is too large.");
  const bytes = new Uint8Array(await c.req.arrayBuffer());
  if (bytes.byteLength > MAX_EVENTS_BYTES) throw new OutpostError("PAYLOAD_TOO_LARGE", "The batch is too large.");
  if (base64urlSha256(bytes) !== identity.bodySha256) throw new OutpostVerifyError("body_sha256 does not match the body");
  const events = parseBatch(new TextDecoder().decode(bytes));
  const result = storeBatch(c.get("store"), events);
  return c.json(result);
});
