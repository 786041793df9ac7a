// The edge's paths that more than one side names (the Worker routes them; the CLI, the web app and the origin call them).

export const PATHS = {
  /** Liveness; never touches the origin (the origin answers its own /health too). */
  health: "/health",
  /** Readiness: configuration and origin checks, 503 when not ready. */
  ready: "/ready",

  jwks: "/.well-known/jwks.json",
  openidConfiguration: "/.well-known/openid-configuration",
  /** The same metadata at RFC 8414's own well-known path. */
  oauthMetadata: "/.well-known/oauth-authorization-server",

  me: "/auth/me",
  deviceCode: "/auth/device/code",
  /** The token endpoint (the device grant and refresh_token); /auth/token is the same endpoint. */
  deviceToken: "/auth/device/token",
  /** The token endpoint as the metadata names it. */
  token: "/auth/token",
  /** RFC 7009 token revocation. */
  revoke: "/auth/revoke",
  deviceLookup: "/auth/device/lookup",
  deviceApprove: "/auth/device/approve",
  logout: "/auth/logout",
  enroll: "/auth/enroll",
  refresh: "/auth/refresh",
  wsTicket: "/auth/ws-ticket",
  scoped: "/auth/scoped",

  /** POST: a batch of heartbeats; /api/heartbeat/:id (heartbeatPath) is one session. */
  heartbeat: "/api/heartbeat",
  presence: "/api/presence",
  /** Phones' (and `outpost sessions --watch`'s) live presence WebSocket. */
  presenceSocket: "/api/presence/ws",
  /** An agent process's WebSocket for heartbeats and end reports. */
  agentSocket: "/api/presence/agent",
  /** The origin's link: one WebSocket per running origin, whose pings say the laptop is awake. */
  originLink: "/api/presence/origin",
  devices: "/api/devices",
  enrollLinks: "/api/enroll-links",
  access: "/api/access",
} as const;

/** /api/heartbeat/:id: one session's heartbeat (POST), end report (DELETE) and details (GET). */
export function heartbeatPath(sessionId: string): string {
  return `${PATHS.heartbeat}/${encodeURIComponent(sessionId)}`;
}

/** /api/devices/:id: revoke one device (DELETE). */
export function devicePath(deviceId: string): string {
  return `${PATHS.devices}/${encodeURIComponent(deviceId)}`;
}

/** The request id the edge gives every request, echoes to the client and passes on to the origin. */
export const REQUEST_ID_HEADER = "X-Request-Id";
