// The edge's own API on the wire: sessions and presence, heartbeats and agent acks, devices, health and readiness.
import type { ErrorCode } from "./errors.ts";
import type { TimelineEntry } from "./events.ts";

const ACTIVE_STATUSES = ["working", "idle"] as const;
export const SESSION_STATUSES = [...ACTIVE_STATUSES, "ended", "failed"] as const;
export type ActiveStatus = (typeof ACTIVE_STATUSES)[number];
export type SessionStatus = (typeof SESSION_STATUSES)[number];

/** Whether a session is live (working or idle) rather than ended or failed. */
export function isActive(status: string): status is ActiveStatus {
  return (ACTIVE_STATUSES as readonly string[]).includes(status);
}

/** A session as GET /api/presence and the presence WebSocket show it. */
export interface SessionView {
  id: string;
  status: SessionStatus;
  alive: boolean;
  lastHeartbeat: string;
  expiresAt: string | null;
  startedAt: string | null;
  hostname: string | null;
  pid: number | null;
  name: string | null;
  owner: string;
  reason: string | null;
  exitCode: number | null;
  endedAt: string | null;
}

/**
 * What phones see of the laptop: `online`, `offline` (asleep or gone: no link and no probe answer) or `unreachable`
 * (its origin link is up, so the process is alive, but requests through the tunnel fail).
 */
export type OriginReachability = "online" | "offline" | "unreachable";

export interface OriginState {
  /** `state === "online"`; kept for clients that know only two states. */
  online: boolean;
  /** When the origin was last known to be alive (a ping on its link, an answered probe or delivery). */
  lastSeen: string | null;
  state: OriginReachability;
  /** Whether the origin's link (GET /api/presence/origin) is up: false for an origin running without a credential. */
  link: boolean;
}

/** A session's `meta`: a JSON object (it arrives as JSON and is stored as JSON); nested values are not typed further. */
export type SessionMeta = { [key: string]: string | number | boolean | null | object };

/** GET /api/presence: every session the hub holds, the origin's state, and the seq the presence WebSocket resumes from. */
export interface PresenceList {
  seq: number;
  sessions: SessionView[];
  origin: OriginState;
}

/** GET /api/heartbeat/:id: one session with its meta and timeline; `data` is null for an unknown id. */
export interface SessionLookup {
  alive: boolean;
  data: SessionDetail | null;
}

type SessionDetail = SessionView & { meta: SessionMeta | null; timeline: TimelineEntry[] };

// --- heartbeats

/** What an agent reports about a session (POST /api/heartbeat/:id, or one entry of a batch with its `id`). */
export interface HeartbeatBody {
  pid?: number;
  hostname?: string;
  /** ISO 8601, or epoch milliseconds. */
  startedAt?: string | number;
  status?: ActiveStatus;
  name?: string;
  meta?: Record<string, unknown>;
}

/** One session's heartbeat with its id, as a batch (and the agent socket) carries it. */
export type HeartbeatEntry = HeartbeatBody & { id: string };

/** POST /api/heartbeat: the heartbeats of every session of one process. */
export interface HeartbeatBatchBody {
  sessions: HeartbeatEntry[];
}

/** POST /api/heartbeat/:id answered 200; a refusal is an error body instead. */
export interface HeartbeatAnswer {
  status: "accepted";
  stored: true;
  ttl: number;
  interval: number;
  expiresAt: string;
}

/** One session's answer within a batch: each is accepted or refused on its own. */
export type HeartbeatBatchEntry =
  | { id: string; status: "accepted"; stored: true; expiresAt: string }
  | { id: string; status: "rejected"; error: { code: ErrorCode; message: string; retryAfter?: number } };

export interface HeartbeatBatchAnswer {
  ttl: number;
  interval: number;
  sessions: HeartbeatBatchEntry[];
}

/** DELETE /api/heartbeat/:id (and an agent socket's end report): the process exited; non-zero fails the session. */
export interface EndReport {
  exitCode?: number;
  reason?: string;
}

// --- the agent WebSocket (GET /api/presence/agent)

type AgentMessageId = string | number;

/** What an agent sends on its socket; each is answered with an ack (or an error) carrying the same id. */
export type AgentRequest =
  | { type: "heartbeat"; id: AgentMessageId; sessions: HeartbeatEntry[] }
  | ({ type: "end"; id: AgentMessageId; sessionId: string } & EndReport);

/** The agent WebSocket's per-session answer to a heartbeat or end report. */
export type AckStatus = "accepted" | "forbidden" | "rate_limited" | "conflict" | "not_found" | "invalid";

/** The error code an HTTP route answers with where the agent socket acks with this status. */
export const ACK_CODE = {
  forbidden: "FORBIDDEN",
  rate_limited: "RATE_LIMITED",
  conflict: "CONFLICT",
  not_found: "NOT_FOUND",
  invalid: "BAD_REQUEST",
} as const satisfies Record<Exclude<AckStatus, "accepted">, ErrorCode>;

export interface AckResult {
  id: string | null;
  status: AckStatus;
  ttl: number;
  expiresAt: string | null;
  interval: number;
  message?: string;
  retryAfter?: number;
}

export type AgentAnswer = { type: "ack"; id: AgentMessageId; results: AckResult[] } | { type: "error"; id?: AgentMessageId; message: string };

/** The close code the edge sends when the credential behind a WebSocket expired or was revoked (4000–4999: ours). */
export const SESSION_ENDED = 4401;

// --- the origin link (GET /api/presence/origin)

/**
 * The origin sends "ping" this often on its link; the hub's runtime answers "pong" without waking the hub. A link
 * silent for ORIGIN_LINK_TTL_MS counts as gone (the laptop asleep or the process frozen): the hub closes it with
 * LINK_TIMED_OUT and phones see the origin offline, and an origin hearing no pong that long reconnects.
 *
 * The numbers: phones must learn of a sleeping laptop within 5 s. Detection takes at most the TTL after the last ping
 * (the hub's alarm is set to exactly that moment), so the TTL must leave room below 5 s for the alarm and the push;
 * and it must outlast a ping or two lost to a Wi-Fi hiccup or an event-loop stall, so one late ping does not flip the
 * state. 1 s pings and a 3.5 s TTL tolerate 2.5 s of silence and report in at most 3.5 s. The pings cost nothing at
 * the edge: auto-responses are neither billed as requests nor wake the hub (only the alarm that checks them does, and
 * only while someone watches).
 */
export const ORIGIN_LINK_PING_MS = 1000;
export const ORIGIN_LINK_TTL_MS = 3500;
/** The hub closed a link it heard no ping on within the TTL; the origin reconnects at once. */
export const LINK_TIMED_OUT = 4408;
/** The close code an origin stopping on purpose sends: the hub shows it offline at once instead of after the TTL. */
export const LINK_GOING_AWAY = 1001;

// --- devices

/** A signed-in device (a CLI or a browser), as GET /api/devices lists it. */
export interface DeviceRecord {
  id: string;
  sub: string;
  email: string;
  kind: "cli" | "browser";
  name: string;
  hostname: string;
  platform: string;
  arch: string;
  createdAt: number;
  lastSeenAt: number;
  revokedAt: number | null;
}

/** An origin's link to the edge, as GET /api/devices lists it beside the device whose credential opened it. */
export interface OriginLinkView {
  /** The signed-in device behind the link's credential; null for a token that names none (OUTPOST_TOKEN, Supabase). */
  deviceId: string | null;
  email: string;
  connectedAt: string;
  /** Its last ping (or its opening, before the first). */
  lastSeen: string;
}

/** GET /api/devices: owners see every device, everyone else their own; `current` is the caller's. */
export interface DeviceList {
  devices: DeviceRecord[];
  current: string | null;
  /** The origin links open now, with the same visibility as the devices. */
  originLinks: OriginLinkView[];
}

/** DELETE /api/devices/:id. */
export interface DeviceRevoked {
  device: DeviceRecord | null;
}

// --- health

/** GET /health: liveness only, never touches the origin. */
export interface HealthReport {
  status: "ok";
  version: string;
  uptime: number;
  services: Record<string, string>;
}

export interface ReadyCheck {
  ok: boolean;
  /** Setting names or a short reason; never a setting's value. */
  problems?: string[];
  latencyMs?: number;
}

/** GET /ready: 200 when every check passes, 503 with the same body when not. */
export interface ReadyReport {
  ready: boolean;
  checks: Record<string, ReadyCheck>;
}
