// The presence API at the edge, ahead of the proxy: agents' heartbeats (/api/heartbeat), who is alive and the live
// WebSockets for phones, agents and the origin's link (/api/presence).
import { Hono, type Context } from "hono";
import { readFields } from "../body.ts";
import { requireAuth } from "../auth/middleware.ts";
import { getConfig, getPresenceConfig, type PresenceConfig } from "../../shared/settings/index.ts";
import { OutpostError } from "../../shared/errors.ts";
import type { AppEnv } from "../types.ts";
import { batchList, parseBatchEntry, parseExit, parseHeartbeat, sessionId, BATCH_BODY_CAP, HEARTBEAT_BODY_CAP } from "../../shared/presence.ts";
import type { HeartbeatAnswer, HeartbeatBatchAnswer, PresenceList, SessionLookup } from "../../shared/api-types.ts";
import type { PresenceHub } from "../../durable-objects/presence/hub.ts";
import type { Refusal } from "../../durable-objects/presence/model.ts";
import { WATCHER_HEADER } from "../../durable-objects/presence/sockets.ts";

/** The deployment's one hub; it is named for its role, and its origin is ORIGIN_URL. */
export function presenceStub(env: Env): DurableObjectStub<PresenceHub> {
  return env.PRESENCE.getByName("origin");
}

/** What this isolate last told the hub about the origin; null until it has said anything (or a report failed). */
let reportedOrigin: boolean | null = null;

/**
 * For the gateway: pass on what a proxied request saw of the origin (reached it or not). Only a change seen by this
 * isolate costs a call, made after the response via waitUntil; the hub itself writes only on a real transition.
 */
export function reportOriginOutcome(env: Env, ctx: { waitUntil(promise: Promise<unknown>): void }, ok: boolean): void {
  if (reportedOrigin === ok) return;
  reportedOrigin = ok;
  ctx.waitUntil(
    presenceStub(env)
      .reportOrigin(ok)
      .catch(() => {
        reportedOrigin = null;
      }),
  );
}

export const heartbeat = new Hono<AppEnv>();
export const presence = new Hono<AppEnv>();

// Heartbeats have their own limits (one a second per session, a cap on live sessions per user): a user's agents
// beating every 10 s would otherwise spend the general write budget.
const heartbeatAuth = { limitWrites: false };

function settings(c: Context<AppEnv>): PresenceConfig {
  const result = getPresenceConfig(c.env);
  if (!result.ok) {
    throw new OutpostError("CONFIG_INVALID", "Presence is not configured; see /ready.", {
      detail: result.problems.map((p) => p.setting).join(","),
    });
  }
  return result.presence;
}

function refused(r: Refusal): OutpostError {
  return new OutpostError(r.code, r.message, r.retryAfter ? { headers: { "Retry-After": String(r.retryAfter) } } : {});
}

function caller(c: Context<AppEnv>) {
  const identity = c.get("identity");
  return { sub: identity.sub, email: identity.email };
}

// One request for all the sessions of a process; each session gets its own answer.
heartbeat.post("/", requireAuth(heartbeatAuth), async (c) => {
  const { ttlSeconds, intervalSeconds } = settings(c);
  const fields = await readFields(c, BATCH_BODY_CAP);
  const now = Date.now();
  const seen = new Set<string>();
  const inputs = batchList(fields.sessions).map((entry, i) => parseBatchEntry(entry, i, now, seen));
  const results = await presenceStub(c.env).heartbeat(caller(c), inputs);
  const answer: HeartbeatBatchAnswer = {
    ttl: ttlSeconds,
    interval: intervalSeconds,
    sessions: results.map((r) =>
      r.ok
        ? { id: r.id, status: "accepted", stored: true, expiresAt: new Date(r.expiresAt).toISOString() }
        : { id: r.id, status: "rejected", error: { code: r.code, message: r.message, ...(r.retryAfter ? { retryAfter: r.retryAfter } : {}) } },
    ),
  };
  return c.json(answer);
});

heartbeat.post("/:sessionId", requireAuth(heartbeatAuth), async (c) => {
  const { ttlSeconds, intervalSeconds } = settings(c);
  const id = sessionId(c.req.param("sessionId"));
  const input = parseHeartbeat(await readFields(c, HEARTBEAT_BODY_CAP), id, Date.now());
  const [result] = await presenceStub(c.env).heartbeat(caller(c), [input]);
  if (!result!.ok) throw refused(result!);
  return c.json({
    status: "accepted",
    stored: true,
    ttl: ttlSeconds,
    interval: intervalSeconds,
    expiresAt: new Date(result!.expiresAt).toISOString(),
  } satisfies HeartbeatAnswer);
});

heartbeat.delete("/:sessionId", requireAuth(heartbeatAuth), async (c) => {
  settings(c);
  const id = sessionId(c.req.param("sessionId"));
  const fields = await readFields(c, HEARTBEAT_BODY_CAP);
  const exit = parseExit(fields);
  const result = await presenceStub(c.env).end(caller(c), id, exit);
  if (!result.ok) throw refused(result);
  return c.json({ status: "removed" });
});

heartbeat.get("/:sessionId", requireAuth(), async (c) => {
  settings(c);
  const id = sessionId(c.req.param("sessionId"));
  c.header("Cache-Control", "no-store");
  return c.json((await presenceStub(c.env).get(id)) satisfies SessionLookup);
});

presence.get("/", requireAuth(), async (c) => {
  settings(c);
  c.header("Cache-Control", "no-store");
  return c.json((await presenceStub(c.env).list()) satisfies PresenceList);
});

/** The checks both sockets share: a WebSocket upgrade, from no Origin (the CLI) or an allowed one (the app). */
function assertUpgrade(c: Context<AppEnv>): void {
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
    throw new OutpostError("UPGRADE_REQUIRED", "This endpoint only accepts WebSocket upgrades.", { headers: { Upgrade: "websocket" } });
  }
  const config = getConfig(c.env);
  const origin = c.req.header("origin");
  if (origin && !(config.ok && config.config.corsOrigins.has(origin))) {
    throw new OutpostError("FORBIDDEN_ORIGIN", "WebSocket connections from this origin are not allowed.");
  }
}

presence.get("/ws", requireAuth({ wsTicket: true }), async (c) => {
  settings(c);
  assertUpgrade(c);
  const after = c.req.query("after");
  if (after !== undefined && !/^\d{1,15}$/.test(after)) throw new OutpostError("BAD_REQUEST", '"after" must be a sequence number.');
  const identity = c.get("identity");
  const target = new URL("https://presence.internal/ws");
  if (after !== undefined) target.searchParams.set("after", after);
  return presenceStub(c.env).fetch(target.toString(), {
    headers: { upgrade: "websocket", [WATCHER_HEADER]: JSON.stringify({ sub: identity.sub, exp: identity.exp, deviceId: identity.deviceId }) },
  });
});

// An agent process's one socket: its heartbeats and end reports as messages (cheaper than a request per beat).
presence.get("/agent", requireAuth({ wsTicket: true }), async (c) => {
  settings(c);
  assertUpgrade(c);
  const identity = c.get("identity");
  if (identity.role === "viewer") throw new OutpostError("FORBIDDEN", "Viewers can only read.");
  const agent = { sub: identity.sub, email: identity.email, exp: identity.exp, deviceId: identity.deviceId, role: identity.role };
  return presenceStub(c.env).fetch("https://presence.internal/agent", {
    headers: { upgrade: "websocket", [WATCHER_HEADER]: JSON.stringify(agent) },
  });
});

// An origin's link: one socket per running `outpost origin`, whose pings tell the hub within seconds that the laptop
// went to sleep or woke up. Bearer tokens only (it is no browser), owners and members only.
presence.get("/origin", requireAuth(), async (c) => {
  settings(c);
  assertUpgrade(c);
  const identity = c.get("identity");
  if (identity.role === "viewer") throw new OutpostError("FORBIDDEN", "Only owners and members can link an origin.");
  // Each link that comes or goes is an event and a probe: opening one counts against the user's write budget.
  const { success } = await c.env.WRITE_LIMITER.limit({ key: `user:${identity.sub}` });
  if (!success) throw new OutpostError("RATE_LIMITED", "Too many writes; try again in a minute.", { headers: { "Retry-After": "60" } });
  const who = { sub: identity.sub, email: identity.email, exp: identity.exp, deviceId: identity.deviceId, role: identity.role };
  return presenceStub(c.env).fetch("https://presence.internal/origin", {
    headers: { upgrade: "websocket", [WATCHER_HEADER]: JSON.stringify(who) },
  });
});

// The edge owns these paths: other methods and sub-paths are answered here and never reach the origin.
const ALLOW: [Hono<AppEnv>, string, string][] = [
  [heartbeat, "/", "POST"],
  [heartbeat, "/:sessionId", "GET, HEAD, POST, DELETE"],
  [presence, "/", "GET, HEAD"],
  [presence, "/ws", "GET"],
  [presence, "/agent", "GET"],
  [presence, "/origin", "GET"],
];
for (const [app, path, allow] of ALLOW) {
  app.all(path, () => {
    throw new OutpostError("METHOD_NOT_ALLOWED", "This method is not allowed here.", { headers: { Allow: allow } });
  });
}
for (const app of [heartbeat, presence]) {
  app.all("/*", () => {
    throw new OutpostError("NOT_FOUND", "No such route.");
  });
}
