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

export interface OriginState {
  online: boolean;
  lastSeen: string | null;
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

/** GET /api/devices: owners see every device, everyone else their own; `current` is the caller's. */
export interface DeviceList {
  devices: DeviceRecord[];
  current: string | null;
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
