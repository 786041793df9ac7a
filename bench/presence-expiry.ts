// Presence benchmark, expiry: time from TTL lapse to the event at a subscriber, for the hub and for Redis.
import http from "node:http";
import WebSocket from "ws";
import {
  diffStats,
  EXPIRY_SESSIONS,
  EXPIRY_SPREAD_MS,
  EXPIRY_TTL_S,
  hubStats,
  nowMs,
  postJson,
  sleep,
  type StatsDelta,
  UNRELATED_KEYS,
  UNRELATED_TTL_S,
} from "./presence-shared.ts";
import type { RunningRedis } from "./redis.ts";
import { RespClient } from "./resp.ts";
import type { RunningWorker } from "./workerd.ts";

export interface ExpiryResult {
  label: string;
  sessions: number;
  ttlSec: number;
  /** Events that arrived at the subscriber within 2 × TTL of their lapse. */
  arrived: number;
  /** Per arrived event: ms from the TTL lapse to its arrival at the subscriber. */
  latencyMs: number[];
  /** Hub only: ms from the lapse to the hub's alarm handling it (the event's `at`), and from there to arrival. */
  handledMs?: number[];
  deliveryMs?: number[];
  note?: string;
}

export async function hubExpiry(worker: RunningWorker, ownerToken: string, memberToken: string): Promise<ExpiryResult & { stats: StatsDelta }> {
  const lapses = new Map<string, number>();
  const arrivals = new Map<string, { at: number; handled: number }>();
  const ws = new WebSocket(`${worker.directUrl.replace(/^http/, "ws")}/api/presence/ws`, {
    headers: { authorization: `Bearer ${ownerToken}` },
    perMessageDeflate: false,
  });
  ws.on("message", (data: Buffer) => {
    const at = nowMs();
    const msg = JSON.parse(data.toString("utf8")) as { type: string; event?: { type: string; sessionId: string; at: string } };
    if (msg.type === "event" && msg.event?.type === "session_expired" && msg.event.sessionId.startsWith("expiry-")) {
      arrivals.set(msg.event.sessionId, { at, handled: Date.parse(msg.event.at) });
    }
  });
  await new Promise<void>((resolve, reject) => {
    ws.once("message", () => resolve());
    ws.once("error", reject);
  });
  const before = await hubStats(worker);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const started = performance.now();
  const beats: Promise<void>[] = [];
  for (let k = 0; k < EXPIRY_SESSIONS; k++) {
    const due = started + (k * EXPIRY_SPREAD_MS) / EXPIRY_SESSIONS;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const id = `expiry-${k}`;
    beats.push(
      postJson(agent, `${worker.directUrl}/api/heartbeat/${id}`, memberToken, { hostname: "bench-laptop", name: id }).then(({ status, body }) => {
        if (status !== 200) throw new Error(`expiry heartbeat answered ${status}: ${body}`);
        lapses.set(id, Date.parse((JSON.parse(body) as { expiresAt: string }).expiresAt));
      }),
    );
  }
  await Promise.all(beats);
  agent.destroy();
  const lastLapse = Math.max(...lapses.values());
  await sleep(Math.max(0, lastLapse + 2 * EXPIRY_TTL_S * 1000 - Date.now()) + 50);
  ws.close(1000);
  const after = await hubStats(worker);
  const latencyMs: number[] = [];
  const handledMs: number[] = [];
  const deliveryMs: number[] = [];
  for (const [id, lapse] of lapses) {
    const got = arrivals.get(id);
    if (!got || got.at > lapse + 2 * EXPIRY_TTL_S * 1000) continue;
    latencyMs.push(got.at - lapse);
    handledMs.push(got.handled - lapse);
    deliveryMs.push(got.at - got.handled);
  }
  return {
    label: "Outpost hub: `session_expired` on the presence WebSocket",
    sessions: EXPIRY_SESSIONS,
    ttlSec: EXPIRY_TTL_S,
    arrived: latencyMs.length,
    latencyMs,
    handledMs,
    deliveryMs,
    stats: diffStats(before, after),
  };
}

export async function redisExpiry(redis: RunningRedis, label: string, prefix: string): Promise<ExpiryResult> {
  const sub = await RespClient.connect(redis.port);
  const writer = await RespClient.connect(redis.port);
  const arrivals = new Map<string, number>();
  sub.onPush = (message) => {
    const key = message[message.length - 1];
    if (typeof key === "string" && key.startsWith(prefix)) arrivals.set(key, nowMs());
  };
  await sub.command("SUBSCRIBE", "__keyevent@0__:expired");
  const lapses = new Map<string, number>();
  const started = performance.now();
  const writes: Promise<void>[] = [];
  for (let k = 0; k < EXPIRY_SESSIONS; k++) {
    const due = started + (k * EXPIRY_SPREAD_MS) / EXPIRY_SESSIONS;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const key = `${prefix}${k}`;
    writes.push(
      writer
        .pipeline([
          ["SET", key, "1", "EX", EXPIRY_TTL_S],
          ["PEXPIRETIME", key],
        ])
        .then(([ok, at]) => {
          if (ok !== "OK" || typeof at !== "number") throw new Error(`redis SET/PEXPIRETIME answered ${String(ok)} ${String(at)}`);
          lapses.set(key, at);
        }),
    );
  }
  await Promise.all(writes);
  const lastLapse = Math.max(...lapses.values());
  await sleep(Math.max(0, lastLapse + 2 * EXPIRY_TTL_S * 1000 - Date.now()) + 50);
  sub.close();
  writer.close();
  const latencyMs: number[] = [];
  for (const [key, lapse] of lapses) {
    const at = arrivals.get(key);
    if (at !== undefined && at <= lapse + 2 * EXPIRY_TTL_S * 1000) latencyMs.push(at - lapse);
  }
  return { label, sessions: EXPIRY_SESSIONS, ttlSec: EXPIRY_TTL_S, arrived: latencyMs.length, latencyMs };
}

export async function loadUnrelatedKeys(redis: RunningRedis): Promise<number> {
  const client = await RespClient.connect(redis.port);
  for (let i = 0; i < UNRELATED_KEYS; i += 1000) {
    await client.pipeline(Array.from({ length: Math.min(1000, UNRELATED_KEYS - i) }, (_, k) => ["SET", `unrelated:${i + k}`, "x", "EX", UNRELATED_TTL_S]));
  }
  const size = (await client.command("DBSIZE")) as number;
  client.close();
  return size;
}
