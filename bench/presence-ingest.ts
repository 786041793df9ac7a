// Presence benchmark, heartbeat ingest: targets, request specs for single and batched beats, pacing and counting.
import type { ClosedLoopResult, RequestSpec } from "./http-load.ts";
import { BATCH, beatBody, POOL, sessionId, SESSIONS_PER_MEMBER, SLOW_LOOKUP_MS, type StatsDelta } from "./presence-shared.ts";

export type IngestKey = "hubSingle" | "hubBatch" | "redisFast" | "redisSlow";

export const INGEST_LABELS: Record<IngestKey, string> = {
  hubSingle: "Outpost: `POST /api/heartbeat/:id` → Worker → hub (one session per request)",
  hubBatch: `Outpost: \`POST /api/heartbeat\` with ${BATCH} sessions per request (a process's batch)`,
  redisFast: "Older design: Node + `/auth/v1/user` lookup (0 ms) + Redis `SET … EX 15`",
  redisSlow: `Older design: Node + \`/auth/v1/user\` lookup (${SLOW_LOOKUP_MS} ms) + Redis \`SET … EX 15\``,
};

export interface IngestTarget {
  key: IngestKey;
  url: string;
  /** The request for pool position `s` (its first session). */
  next(s: number): RequestSpec;
  /** Sessions per request. */
  step: number;
  /** Targets sharing a cursor continue each other's walk through the pool (the two hub targets do, so no run
   * re-beats sessions another run has just beaten). */
  cursor: string;
  units?(status: number, body: string): number;
  /** Server-side processes on this target's path (the load generator excluded). */
  pids: Record<string, number | undefined>;
  /** Whether hub stats apply. */
  hub: boolean;
}

export interface IngestResult extends ClosedLoopResult {
  roundsUnitsPerSec: number[];
  /** Heartbeats refused inside 200 batch responses (e.g. RATE_LIMITED); single requests show as 429s. */
  rejected: number;
  stats: StatsDelta;
  cpuUsPerUnit: number;
}

export function singleBeatSpec(tokens: string[], i: number): RequestSpec {
  const s = i % POOL;
  return {
    method: "POST",
    path: `/api/heartbeat/${sessionId(s)}`,
    headers: { authorization: `Bearer ${tokens[Math.floor(s / SESSIONS_PER_MEMBER)]!}`, "content-type": "application/json" },
    body: JSON.stringify(beatBody(s)),
  };
}

/** `size` consecutive sessions of one member, from pool position `first` (a multiple of `size`, which divides 800). */
export function batchSpec(tokens: string[], first: number, size = BATCH): RequestSpec {
  const start = first % POOL;
  const member = Math.floor(start / SESSIONS_PER_MEMBER);
  const sessions = Array.from({ length: size }, (_, k) => ({ id: sessionId(start + k), ...beatBody(start + k) }));
  return {
    method: "POST",
    path: "/api/heartbeat",
    headers: { authorization: `Bearer ${tokens[member]!}`, "content-type": "application/json" },
    body: JSON.stringify({ sessions }),
  };
}

/**
 * When each pool session was last sent (performance.now()): a request is held until every session in it was last sent
 * over MIN_GAP_MS ago, so the hub's 1/s per-session limit never refuses a beat. If that ever holds a request, the
 * pool (not the hub) bounded the rate; the report says so.
 */
export const MIN_GAP_MS = 1250;
export function paced(lastSent: Float64Array, first: number, size: number, spec: RequestSpec): RequestSpec {
  let notBefore = 0;
  for (let k = 0; k < size; k++) notBefore = Math.max(notBefore, lastSent[(first + k) % POOL]! + MIN_GAP_MS);
  const at = Math.max(performance.now(), notBefore);
  for (let k = 0; k < size; k++) lastSent[(first + k) % POOL] = at;
  return { ...spec, notBefore };
}

export const countAccepted = (status: number, body: string) => (status === 200 ? body.split('"status":"accepted"').length - 1 : 0);
export const countRejected = (status: number, body: string) => (status === 200 ? body.split('"status":"rejected"').length - 1 : 0);
