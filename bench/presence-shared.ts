// Presence benchmark: shared settings, ids, hub stats, the stub origin and a small JSON POST helper.
import http from "node:http";
import { fileURLToPath } from "node:url";
import type { RunningWorker } from "./workerd.ts";

// --- settings -------------------------------------------------------------------------------------------------------

/** The ingest hub's TTL: long enough that 12,000 sessions beaten round-robin never lapse between runs (max 60). */
export const INGEST_TTL_S = 60;
/** The expiry hub's TTL, and Redis's EX for the expiry test. */
export const EXPIRY_TTL_S = 3;
/** Members (each may hold at most 1,000 live sessions) × sessions each: the pool the ingest load cycles through. */
export const MEMBERS = 16;
export const SESSIONS_PER_MEMBER = 800;
export const POOL = MEMBERS * SESSIONS_PER_MEMBER;
export const BATCH = 10;
export const CONNECTIONS = 10;
export const FANOUT_SOCKETS = 1000;
export const FANOUT_TRIGGERS = 15;
export const EXPIRY_SESSIONS = 200;
/** Heartbeats (and SETs) of the expiry test are spread over this long, so lapses are spread too. */
export const EXPIRY_SPREAD_MS = 2000;
export const UNRELATED_KEYS = 100_000;
export const UNRELATED_TTL_S = 3600;
export const DEFAULT_DURATION_SEC = 3;
export const DEFAULT_ROUNDS = 3;
export const DEFAULT_WARMUP_SEC = 1;
/** The 75th-percentile latency the issue reports for Supabase's /auth/v1/user. */
export const SLOW_LOOKUP_MS = 270;

/** Targets from the issue. */
export const TARGET_HEARTBEATS_PER_SEC = 1000;
export const TARGET_EXPIRY_EXTRA_MS = 150;
export const TARGET_ROWS_PER_BEAT = 0.05;

export const LOOKUP_HOST = fileURLToPath(new URL("./user-lookup-host.ts", import.meta.url));
export const REDIS_HOST = fileURLToPath(new URL("./redis-heartbeat-host.ts", import.meta.url));

export const memberEmail = (m: number) => `bench-member-${String(m).padStart(2, "0")}@example.com`;
export const sessionId = (i: number) => `bench-${String(Math.floor(i / SESSIONS_PER_MEMBER)).padStart(2, "0")}-${i % SESSIONS_PER_MEMBER}`;
/** The same details on every beat, so a steady-state beat changes nothing but the time. */
export const beatBody = (i: number) => ({ hostname: "bench-laptop", pid: 10_000 + i, name: `agent ${i}` });
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Epoch milliseconds with sub-millisecond resolution, comparable with Redis's and workerd's clocks on this machine. */
export const nowMs = () => performance.timeOrigin + performance.now();

export interface HubStats {
  rowsWritten: number;
  alarmSets: number;
  heartbeats: number;
  alarmRuns: number;
  lastSeq: number;
  outboxDepth: number;
  delivered: number;
  live: number;
  watchers: number;
}

export async function hubStats(worker: RunningWorker): Promise<HubStats> {
  const res = await fetch(`${worker.directUrl}/__bench/hub-stats`);
  if (!res.ok) throw new Error(`hub stats answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as HubStats;
}

export function diffStats(a: HubStats, b: HubStats) {
  return {
    heartbeats: b.heartbeats - a.heartbeats,
    rowsWritten: b.rowsWritten - a.rowsWritten,
    alarmSets: b.alarmSets - a.alarmSets,
    alarmRuns: b.alarmRuns - a.alarmRuns,
    events: b.lastSeq - a.lastSeq,
  };
}
export type StatsDelta = ReturnType<typeof diffStats>;
export const addDelta = (a: StatsDelta, b: StatsDelta): StatsDelta => ({
  heartbeats: a.heartbeats + b.heartbeats,
  rowsWritten: a.rowsWritten + b.rowsWritten,
  alarmSets: a.alarmSets + b.alarmSets,
  alarmRuns: a.alarmRuns + b.alarmRuns,
  events: a.events + b.events,
});
export const ZERO_DELTA: StatsDelta = { heartbeats: 0, rowsWritten: 0, alarmSets: 0, alarmRuns: 0, events: 0 };

/** A stand-in origin for the hub's outbox and probe: accepts every event batch and answers /health. */
export async function startStubOrigin(): Promise<{ url: string; eventsReceived: () => number; close(): Promise<void> }> {
  let events = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method === "POST" && req.url === "/outpost/events") {
        try {
          events += (JSON.parse(Buffer.concat(chunks).toString("utf8")) as { events: unknown[] }).events.length;
        } catch {
          // counted as nothing
        }
      }
      res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    eventsReceived: () => events,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function postJson(agent: http.Agent, url: string, token: string, body: unknown): Promise<{ status: number; body: string }> {
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: "POST",
        agent,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "content-length": Buffer.byteLength(text) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(text);
  });
}
