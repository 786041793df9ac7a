// Pure session state changes: what a heartbeat, an exit or an expiry does to a stored session, and which event it makes.
import {
  DISCONNECTED,
  TIMELINE_MAX,
  iso,
  isActive,
  type Caller,
  type EventType,
  type HeartbeatInput,
  type SessionRecord,
  type TimelineEntry,
} from "./model.ts";

/** A change to store; `event` is null when only details changed (stored, not broadcast). */
export interface Change {
  record: SessionRecord;
  event: EventType | null;
  /** The session became live (new, or back after a disconnect): its expiry must be covered by the alarm. */
  cameOnline: boolean;
}

function withEntry(timeline: TimelineEntry[], entry: TimelineEntry): TimelineEntry[] {
  return [...timeline, entry].slice(-TIMELINE_MAX);
}

/** A session that ended for good; only one that merely lost contact may come back with a heartbeat. */
export function isFinal(s: SessionRecord): boolean {
  return !isActive(s.status) && !(s.status === "failed" && s.reason === DISCONNECTED);
}

/**
 * What a heartbeat changes, or null when it changes nothing but the time: that case writes nothing at all.
 * `row` must be the caller's own session (or absent) and not final.
 */
export function applyBeat(row: SessionRecord | null, input: HeartbeatInput, caller: Caller, now: number): Change | null {
  const details = {
    name: input.name ?? row?.name ?? null,
    hostname: input.hostname ?? row?.hostname ?? null,
    pid: input.pid ?? row?.pid ?? null,
    startedAt: input.startedAt ?? row?.startedAt ?? null,
    meta: input.meta ?? row?.meta ?? null,
  };
  if (!row) {
    const status = input.status ?? "working";
    const record: SessionRecord = {
      id: input.id,
      ownerSub: caller.sub,
      ownerEmail: caller.email,
      status,
      ...details,
      createdAt: now,
      lastHeartbeat: now,
      endedAt: null,
      reason: null,
      exitCode: null,
      timeline: [{ at: iso(now)!, event: "online", status }],
    };
    return { record, event: "session_online", cameOnline: true };
  }
  if (!isActive(row.status)) {
    // Back after agent_disconnected: the laptop slept and woke up; the same session carries on.
    const status = input.status ?? "working";
    const record: SessionRecord = {
      ...row,
      ...details,
      status,
      lastHeartbeat: now,
      endedAt: null,
      reason: null,
      exitCode: null,
      timeline: withEntry(row.timeline, { at: iso(now)!, event: "reconnected", status }),
    };
    return { record, event: "session_online", cameOnline: true };
  }
  const status = input.status ?? row.status;
  const visible = status !== row.status || details.name !== row.name;
  const quiet =
    details.hostname !== row.hostname ||
    details.pid !== row.pid ||
    details.startedAt !== row.startedAt ||
    JSON.stringify(details.meta) !== JSON.stringify(row.meta);
  if (!visible && !quiet) return null;
  const record: SessionRecord = { ...row, ...details, status, lastHeartbeat: now };
  if (visible) {
    const entry: TimelineEntry = { at: iso(now)!, event: status !== row.status ? status : "renamed", status };
    record.timeline = withEntry(row.timeline, entry);
  }
  return { record, event: visible ? "session_updated" : null, cameOnline: false };
}

/** DELETE: ended at once, or failed for a non-zero exit code; null when it had ended already (idempotent). */
export function applyExit(row: SessionRecord, exit: { exitCode?: number; reason?: string }, lastBeat: number, now: number): Change | null {
  if (isFinal(row)) return null;
  const failed = exit.exitCode !== undefined && exit.exitCode !== 0;
  const status = failed ? "failed" : "ended";
  const entry: TimelineEntry = { at: iso(now)!, event: status, status };
  if (exit.reason !== undefined) entry.reason = exit.reason;
  if (exit.exitCode !== undefined) entry.exitCode = exit.exitCode;
  const record: SessionRecord = {
    ...row,
    status,
    lastHeartbeat: Math.max(row.lastHeartbeat, lastBeat),
    endedAt: now,
    reason: exit.reason ?? null,
    exitCode: exit.exitCode ?? null,
    timeline: withEntry(row.timeline, entry),
  };
  return { record, event: failed ? "session_failed" : "session_ended", cameOnline: false };
}

/** The TTL lapsed: a live session fails with agent_disconnected; anything else is left alone (a retried alarm). */
export function applyExpiry(row: SessionRecord | null, lastBeat: number, now: number): Change | null {
  if (!row || !isActive(row.status)) return null;
  const record: SessionRecord = {
    ...row,
    status: "failed",
    lastHeartbeat: Math.max(row.lastHeartbeat, lastBeat),
    endedAt: now,
    reason: DISCONNECTED,
    exitCode: null,
    timeline: withEntry(row.timeline, { at: iso(now)!, event: "expired", status: "failed", reason: DISCONNECTED }),
  };
  return { record, event: "session_expired", cameOnline: false };
}
