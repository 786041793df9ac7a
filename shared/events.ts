// Presence events: their types, session timelines, the presence WebSocket's messages and their delivery to the origin.
import type { ActiveStatus, OriginState, SessionStatus, SessionView } from "./api-types.ts";

/** Every event the presence hub emits, to phones (the presence WebSocket) and to the origin (POST /outpost/events). */
const PRESENCE_EVENT_TYPES = [
  "session_online",
  "session_updated",
  "session_expired",
  "session_ended",
  "session_failed",
  "origin_online",
  "origin_offline",
  "origin_unreachable",
] as const;

export type PresenceEventType = (typeof PRESENCE_EVENT_TYPES)[number];

/**
 * One event as phones and the origin see it; `id` ("hub:seq") is stable across retries, so receivers can deduplicate.
 * Receivers that must accept types newer than themselves (the origin) read it as PresenceEvent<string>.
 */
export interface PresenceEvent<Type extends string = PresenceEventType> {
  id: string;
  seq: number;
  type: Type;
  sessionId: string | null;
  at: string;
  /**
   * Session events carry the SessionView after the change; origin events an OriginState (origin_online, origin_offline
   * and origin_unreachable name its three states; `data.state` says the same).
   */
  data: Record<string, unknown>;
}

/** The failure reason of a session whose agent stopped sending heartbeats (laptop asleep, process gone). */
export const DISCONNECTED = "agent_disconnected";

/** What a hub timeline entry records: the session came online or back, changed status or name, or stopped. */
export type TimelineEvent = "online" | "reconnected" | ActiveStatus | "renamed" | "ended" | "failed" | "expired";

/** Timeline entries kept per session (the newest), at the edge and at the origin alike. */
export const TIMELINE_MAX = 50;

/**
 * One step of a session's history. The hub's entries use its own event names and statuses; the origin's name the
 * presence event (or "created") and may be "pending", so it reads them as TimelineEntry<string, string>.
 */
export interface TimelineEntry<Event extends string = TimelineEvent, Status extends string = SessionStatus> {
  at: string;
  event: Event;
  status: Status;
  reason?: string;
  exitCode?: number;
  /** The presence event's id, when the origin made the entry from one. */
  eventId?: string;
}

/** The first message of a presence WebSocket (and the answer to a resume from too far back: `reset`). */
interface PresenceSnapshotMessage {
  type: "snapshot";
  seq: number;
  reset?: true;
  sessions: SessionView[];
  origin: OriginState;
}

interface PresenceEventMessage {
  type: "event";
  seq: number;
  event: PresenceEvent;
}

/** What the presence WebSocket (GET /api/presence/ws) sends; `seq` is what `?after=` resumes from. */
export type PresenceMessage = PresenceSnapshotMessage | PresenceEventMessage;

// --- delivery to the origin

/** Where the hub delivers its events at the origin. */
export const EVENTS_PATH = "/outpost/events";
/** The subject and role of the assertion the hub signs each delivery with; no user holds either. */
export const EDGE_SUBJECT = "outpost-edge";
export const EDGE_ROLE = "system";
/** The origin refuses larger deliveries: the hub's batches must stay below both. */
export const MAX_EVENTS_PER_BATCH = 1000;
export const MAX_EVENTS_BYTES = 4 * 1024 * 1024;

/** The origin's answer: every id it now holds (new or seen before), so the hub can drop them from its outbox. */
export interface BatchResult {
  acked: string[];
  applied: number;
  duplicates: number;
}
