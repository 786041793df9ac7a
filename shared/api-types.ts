// The shapes and codes the edge sends and accepts on the wire, shared by the Durable Objects, the CLI and the web app.

export type ActiveStatus = "working" | "idle";
export type SessionStatus = ActiveStatus | "ended" | "failed";

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

/** The agent WebSocket's per-session answer to a heartbeat or end report. */
export type AckStatus = "accepted" | "forbidden" | "rate_limited" | "conflict" | "not_found" | "invalid";

export interface AckResult {
  id: string | null;
  status: AckStatus;
  ttl: number;
  expiresAt: string | null;
  interval: number;
  message?: string;
  retryAfter?: number;
}

/** The close code the edge sends when the credential behind a WebSocket expired or was revoked (4000–4999: ours). */
export const SESSION_ENDED = 4401;
