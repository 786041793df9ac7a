// The presence hub's shared vocabulary: session and event shapes, limits, and how a stored session is shown.

import { isActive, type OriginState, type SessionMeta as Meta, type SessionStatus, type SessionView } from "../../shared/api-types.ts";
import { DISCONNECTED, TIMELINE_MAX, type PresenceEvent, type PresenceEventType as EventType, type TimelineEntry } from "../../shared/events.ts";

export { DISCONNECTED, TIMELINE_MAX, isActive };
export type { EventType, OriginState, PresenceEvent, SessionView, TimelineEntry };
export type { HeartbeatInput } from "../../shared/presence.ts";

/** More than one heartbeat per second for a session is refused. */
export const MIN_BEAT_GAP_MS = 1000;
/** Live sessions one user may hold; an agent spawning ids in a loop stops here instead of filling storage. */
export const MAX_LIVE_SESSIONS_PER_OWNER = 1000;
/** The resumable event log: 24 hours or the last 10,000 events, whichever is shorter. */
export const LOG_MAX_AGE_MS = 24 * 60 * 60 * 1000;
export const LOG_MAX_EVENTS = 10_000;
/** Events the origin has not acknowledged within 7 days are dropped (and counted). */
export const OUTBOX_MAX_AGE_MS = 7 * 24 * 60 * 60 * 1000;
/** Ended and failed sessions stay readable (and owned) this long. */
export const ENDED_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;
export const PROBE_EVERY_MS = 30_000;
/**
 * One failed probe (or a proxied request that could not reach the origin) is checked again this soon, and only a
 * second failure in a row changes the state: a lost probe does not flip it, and a real outage still shows within
 * seconds of the probe that noticed it.
 */
export const PROBE_RETRY_MS = 2_000;
export const PROBE_FAILURES_TO_FLIP = 2;
export const OUTBOX_BATCH = 100;
export const OUTBOX_MAX_BACKOFF_MS = 60_000;

export interface Caller {
  sub: string;
  email: string;
}

export type Refusal = { code: "FORBIDDEN" | "RATE_LIMITED" | "CONFLICT" | "NOT_FOUND"; message: string; retryAfter?: number };
export type HeartbeatResult = ({ ok: true; expiresAt: number } | ({ ok: false } & Refusal)) & { id: string };

/** A sessions row, with the JSON columns parsed. */
export interface SessionRecord {
  id: string;
  ownerSub: string;
  ownerEmail: string;
  status: SessionStatus;
  name: string | null;
  hostname: string | null;
  pid: number | null;
  startedAt: number | null;
  meta: Meta | null;
  createdAt: number;
  /** The last heartbeat written to storage; the hub's memory usually knows a later one. */
  lastHeartbeat: number;
  endedAt: number | null;
  reason: string | null;
  exitCode: number | null;
  timeline: TimelineEntry[];
}

export function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/**
 * `beat` is the last real heartbeat the hub's memory knows of; `seen` is what expiry counts from, which after a cold
 * start may be the wake-up time rather than a heartbeat. `now` decides `alive` between alarm runs.
 */
export function toView(s: SessionRecord, mem: { beat?: number; seen?: number }, ttlMs: number, now: number): SessionView {
  const beat = Math.max(mem.beat ?? 0, s.lastHeartbeat);
  const active = isActive(s.status);
  const expiresAt = active ? Math.max(mem.seen ?? 0, beat) + ttlMs : null;
  return {
    id: s.id,
    status: s.status,
    alive: active && expiresAt! > now,
    lastHeartbeat: iso(beat)!,
    expiresAt: iso(expiresAt),
    startedAt: iso(s.startedAt),
    hostname: s.hostname,
    pid: s.pid,
    name: s.name,
    owner: s.ownerEmail,
    reason: s.reason,
    exitCode: s.exitCode,
    endedAt: iso(s.endedAt),
  };
}
