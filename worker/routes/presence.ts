// The presence API at the edge, ahead of the proxy: agents' heartbeats, who is alive, and the live WebSocket for phones.
import { Hono, type Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { readFields, stringField } from "../body.ts";
import { requireAuth } from "../auth/middleware.ts";
import { getConfig } from "../config.ts";
import { OutpostError } from "../errors.ts";
import { getPresenceConfig, type PresenceConfig } from "../presence/config.ts";
import type { AppEnv } from "../types.ts";
import type { PresenceHub } from "../../durable-objects/presence/hub.ts";
import { WATCHER_HEADER } from "../../durable-objects/presence/hub.ts";
import type { HeartbeatInput, Refusal } from "../../durable-objects/presence/model.ts";

/** Largest heartbeat body (and largest entry of a batch); a batch as a whole may be larger. */
export const HEARTBEAT_BODY_CAP = 8 * 1024;
export const BATCH_BODY_CAP = 64 * 1024;
export const MAX_BATCH = 100;
const SESSION_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;
const EPOCH_MS_MIN = Date.UTC(2000, 0, 1);
const DAY_MS = 24 * 60 * 60 * 1000;
const STATUS_OF: Record<Refusal["code"], ContentfulStatusCode> = { FORBIDDEN: 403, RATE_LIMITED: 429, CONFLICT: 409, NOT_FOUND: 404 };

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

export const presence = new Hono<AppEnv>();

// Heartbeats have their own limits (one a second per session, a cap on live sessions per user): a user's agents
// beating every 10 s would otherwise spend the general write budget.
const heartbeatAuth = { limitWrites: false };

function settings(c: Context<AppEnv>): PresenceConfig {
  const result = getPresenceConfig(c.env);
  if (!result.ok) {
    throw new OutpostError("CONFIG_INVALID", 503, "Presence is not configured; see /ready.", {
      detail: result.problems.map((p) => p.setting).join(","),
    });
  }
  return result.presence;
}

function bad(message: string): OutpostError {
  return new OutpostError("BAD_REQUEST", 400, message);
}

function sessionId(raw: unknown, where = "The session id"): string {
  if (typeof raw !== "string" || !SESSION_ID.test(raw)) {
    throw bad(`${where} must be 1 to 128 characters from A-Z a-z 0-9 . _ : -`);
  }
  return raw;
}

function present(fields: Record<string, unknown>, name: string): boolean {
  return fields[name] !== undefined && fields[name] !== null;
}

/** Every field is checked before anything reaches the hub; unknown fields are ignored so newer clients keep working. */
export function parseHeartbeat(fields: Record<string, unknown>, id: string, now: number, where = ""): HeartbeatInput {
  const input: HeartbeatInput = { id };
  if (present(fields, "pid")) {
    const pid = fields.pid;
    if (typeof pid !== "number" || !Number.isSafeInteger(pid) || pid < 0 || pid > 0xffffffff) {
      throw bad(`${where}"pid" must be a non-negative integer.`);
    }
    input.pid = pid;
  }
  if (present(fields, "hostname")) input.hostname = stringField(fields, "hostname", 255);
  if (present(fields, "name")) input.name = stringField(fields, "name", 200);
  if (present(fields, "startedAt")) input.startedAt = startedAt(fields.startedAt, now, where);
  if (present(fields, "status")) {
    if (fields.status !== "working" && fields.status !== "idle") throw bad(`${where}"status" must be "working" or "idle".`);
    input.status = fields.status;
  }
  if (present(fields, "meta")) {
    const meta = fields.meta;
    if (typeof meta !== "object" || Array.isArray(meta) || new TextEncoder().encode(JSON.stringify(meta)).byteLength > HEARTBEAT_BODY_CAP) {
      throw bad(`${where}"meta" must be a JSON object of at most ${HEARTBEAT_BODY_CAP} bytes.`);
    }
    input.meta = meta as HeartbeatInput["meta"];
  }
  return input;
}

function startedAt(value: unknown, now: number, where: string): number {
  let ms = NaN;
  if (typeof value === "string" && ISO_TIME.test(value)) ms = Date.parse(value);
  else if (typeof value === "number" && Number.isSafeInteger(value)) ms = value;
  // Epoch seconds by mistake land in 1970 and are refused here rather than shown as a 55-year-old session.
  if (!Number.isFinite(ms) || ms < EPOCH_MS_MIN || ms > now + DAY_MS) {
    throw bad(`${where}"startedAt" must be an ISO 8601 time or epoch milliseconds, not in the future.`);
  }
  return ms;
}

function refused(r: Refusal): OutpostError {
  return new OutpostError(r.code, STATUS_OF[r.code], r.message, r.retryAfter ? { headers: { "Retry-After": String(r.retryAfter) } } : {});
}

function caller(c: Context<AppEnv>) {
  const identity = c.get("identity");
  return { sub: identity.sub, email: identity.email };
}

// One request for all the sessions of a process; each session gets its own answer.
presence.post("/api/heartbeat", requireAuth(heartbeatAuth), async (c) => {
  const { ttlSeconds, intervalSeconds } = settings(c);
  const fields = await readFields(c, BATCH_BODY_CAP);
  const list = fields.sessions;
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_BATCH) {
    throw bad(`"sessions" must be an array of 1 to ${MAX_BATCH} heartbeats.`);
  }
  const now = Date.now();
  const seen = new Set<string>();
  const inputs = list.map((entry: unknown, i) => {
    const where = `sessions[${i}]: `;
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) throw bad(`${where}each heartbeat must be a JSON object.`);
    if (new TextEncoder().encode(JSON.stringify(entry)).byteLength > HEARTBEAT_BODY_CAP) {
      throw new OutpostError("PAYLOAD_TOO_LARGE", 413, `${where}a heartbeat may be at most ${HEARTBEAT_BODY_CAP} bytes.`);
    }
    const id = sessionId((entry as Record<string, unknown>).id, `${where}"id"`);
    if (seen.has(id)) throw bad(`${where}session "${id}" appears twice.`);
    seen.add(id);
    return parseHeartbeat(entry as Record<string, unknown>, id, now, where);
  });
  const results = await presenceStub(c.env).heartbeat(caller(c), inputs);
  return c.json({
    ttl: ttlSeconds,
    interval: intervalSeconds,
    sessions: results.map((r) =>
      r.ok
        ? { id: r.id, status: "accepted", stored: true, expiresAt: new Date(r.expiresAt).toISOString() }
        : { id: r.id, status: "rejected", error: { code: r.code, message: r.message, ...(r.retryAfter ? { retryAfter: r.retryAfter } : {}) } },
    ),
  });
});

presence.post("/api/heartbeat/:sessionId", requireAuth(heartbeatAuth), async (c) => {
  const { ttlSeconds, intervalSeconds } = settings(c);
  const id = sessionId(c.req.param("sessionId"));
  const input = parseHeartbeat(await readFields(c, HEARTBEAT_BODY_CAP), id, Date.now());
  const [result] = await presenceStub(c.env).heartbeat(caller(c), [input]);
  if (!result!.ok) throw refused(result!);
  return c.json({ status: "accepted", stored: true, ttl: ttlSeconds, interval: intervalSeconds, expiresAt: new Date(result!.expiresAt).toISOString() });
});

presence.delete("/api/heartbeat/:sessionId", requireAuth(heartbeatAuth), async (c) => {
  settings(c);
  const id = sessionId(c.req.param("sessionId"));
  const fields = await readFields(c, HEARTBEAT_BODY_CAP);
  const exit: { exitCode?: number; reason?: string } = {};
  if (present(fields, "exitCode")) {
    const code = fields.exitCode;
    if (typeof code !== "number" || !Number.isSafeInteger(code) || code < -0x80000000 || code > 0xffffffff) {
      throw bad('"exitCode" must be an integer.');
    }
    exit.exitCode = code;
  }
  if (present(fields, "reason")) exit.reason = stringField(fields, "reason", 200);
  const result = await presenceStub(c.env).end(caller(c), id, exit);
  if (!result.ok) throw refused(result);
  return c.json({ status: "removed" });
});

presence.get("/api/heartbeat/:sessionId", requireAuth(), async (c) => {
  settings(c);
  const id = sessionId(c.req.param("sessionId"));
  c.header("Cache-Control", "no-store");
  return c.json(await presenceStub(c.env).get(id));
});

presence.get("/api/presence", requireAuth(), async (c) => {
  settings(c);
  c.header("Cache-Control", "no-store");
  return c.json(await presenceStub(c.env).list());
});

presence.get("/api/presence/ws", requireAuth({ wsTicket: true }), async (c) => {
  settings(c);
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
    throw new OutpostError("BAD_REQUEST", 426, "This endpoint only accepts WebSocket upgrades.", { headers: { Upgrade: "websocket" } });
  }
  const config = getConfig(c.env);
  const origin = c.req.header("origin");
  if (origin && !(config.ok && config.config.corsOrigins.has(origin))) {
    throw new OutpostError("FORBIDDEN_ORIGIN", 403, "WebSocket connections from this origin are not allowed.");
  }
  const after = c.req.query("after");
  if (after !== undefined && !/^\d{1,15}$/.test(after)) throw bad('"after" must be a sequence number.');
  const identity = c.get("identity");
  const target = new URL("https://presence.internal/ws");
  if (after !== undefined) target.searchParams.set("after", after);
  return presenceStub(c.env).fetch(target.toString(), {
    headers: { upgrade: "websocket", [WATCHER_HEADER]: JSON.stringify({ sub: identity.sub, exp: identity.exp, deviceId: identity.deviceId }) },
  });
});

// The edge owns these paths: other methods and sub-paths are answered here and never reach the origin.
const ALLOW: [string, string][] = [
  ["/api/heartbeat", "POST"],
  ["/api/heartbeat/:sessionId", "GET, HEAD, POST, DELETE"],
  ["/api/presence", "GET, HEAD"],
  ["/api/presence/ws", "GET"],
];
for (const [path, allow] of ALLOW) {
  presence.all(path, () => {
    throw new OutpostError("METHOD_NOT_ALLOWED", 405, "This method is not allowed here.", { headers: { Allow: allow } });
  });
}
presence.all("/api/heartbeat/*", () => {
  throw new OutpostError("NOT_FOUND", 404, "No such route.");
});
presence.all("/api/presence/*", () => {
  throw new OutpostError("NOT_FOUND", 404, "No such route.");
});
