// A closed-loop HTTP load generator over node:http keep-alive: each request can differ (path, headers, body), and
// responses can be counted in units (e.g. heartbeats accepted in a batch). For loads autocannon cannot express.
import http from "node:http";
import { createHistogram, type RecordableHistogram } from "node:perf_hooks";

export interface RequestSpec {
  method: string;
  /** Path and query. */
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** Not to be sent before this performance.now() time (e.g. to respect a per-key rate limit); the wait is reported. */
  notBefore?: number;
}

export interface ClosedLoopOptions {
  /** Origin of the target, e.g. http://127.0.0.1:41919. */
  url: string;
  /** Requests in flight at once, each on its own keep-alive connection. */
  connections: number;
  durationSec: number;
  /** The i-th request (0-based, across all connections). */
  next(i: number): RequestSpec;
  /** Units of work a response accounts for (e.g. accepted heartbeats); default: 1 for a 2xx, else 0. */
  units?(status: number, body: string): number;
  /** Per-request timeout; default 10 s. */
  timeoutMs?: number;
  /** Stop after this many requests even if time remains. */
  maxRequests?: number;
}

export interface ClosedLoopResult {
  connections: number;
  durationSec: number;
  requests: number;
  /** 2xx responses. */
  ok: number;
  /** Non-2xx responses, errors and timeouts. */
  failed: number;
  /** Sum of `units` over all responses. */
  units: number;
  rps: number;
  unitsPerSec: number;
  /** 2xx latency percentiles. */
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  statuses: Record<string, number>;
  latencyUs: RecordableHistogram;
  /** Requests that had to wait for their `notBefore`, and the total wait. */
  held: number;
  heldMs: number;
}

const isOk = (status: number) => status >= 200 && status <= 299;

/** Runs `connections` loops, each sending its next request as soon as the previous response has been read in full. */
export async function runClosedLoop(options: ClosedLoopOptions): Promise<ClosedLoopResult> {
  const target = new URL(options.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.connections, maxFreeSockets: options.connections });
  const histogram = createHistogram({ lowest: 1, highest: 120_000_000, figures: 3 });
  const statuses: Record<string, number> = {};
  const units = options.units ?? ((status: number) => (isOk(status) ? 1 : 0));
  const timeoutMs = options.timeoutMs ?? 10_000;
  const maxRequests = options.maxRequests ?? Number.POSITIVE_INFINITY;
  let issued = 0;
  let ok = 0;
  let failed = 0;
  let unitSum = 0;
  let held = 0;
  let heldMs = 0;
  const started = performance.now();
  const deadline = started + options.durationSec * 1000;

  const one = (spec: RequestSpec) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const headers: Record<string, string> = { ...spec.headers };
      if (spec.body !== undefined) headers["content-length"] = String(Buffer.byteLength(spec.body));
      const req = http.request(
        { host: target.hostname, port: target.port, method: spec.method, path: spec.path, headers, agent, timeout: timeoutMs },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", reject);
      req.end(spec.body);
    });

  const loop = async () => {
    while (performance.now() < deadline && issued < maxRequests) {
      const spec = options.next(issued++);
      const wait = (spec.notBefore ?? 0) - performance.now();
      if (wait > 0) {
        held++;
        heldMs += wait;
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
      const t0 = performance.now();
      try {
        const { status, body } = await one(spec);
        statuses[status] = (statuses[status] ?? 0) + 1;
        unitSum += units(status, body);
        if (isOk(status)) {
          ok++;
          histogram.record(Math.max(1, Math.round((performance.now() - t0) * 1000)));
        } else failed++;
      } catch (err) {
        failed++;
        const key = err instanceof Error ? err.message : "error";
        statuses[key] = (statuses[key] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: options.connections }, loop));
  const durationSec = (performance.now() - started) / 1000;
  agent.destroy();
  return {
    connections: options.connections,
    durationSec,
    requests: ok + failed,
    ok,
    failed,
    units: unitSum,
    rps: ok / durationSec,
    unitsPerSec: unitSum / durationSec,
    p50Ms: ok > 0 ? histogram.percentile(50) / 1000 : Number.NaN,
    p99Ms: ok > 0 ? histogram.percentile(99) / 1000 : Number.NaN,
    meanMs: ok > 0 ? histogram.mean / 1000 : Number.NaN,
    statuses,
    latencyUs: histogram,
    held,
    heldMs,
  };
}

/** Several runs of the same load as one: counts and durations added, latency histograms merged. */
export function mergeClosedLoops(runs: ClosedLoopResult[]): ClosedLoopResult {
  const first = runs[0];
  if (!first) throw new Error("mergeClosedLoops: no runs");
  const merged = createHistogram({ lowest: 1, highest: 120_000_000, figures: 3 });
  const statuses: Record<string, number> = {};
  for (const run of runs) {
    merged.add(run.latencyUs);
    for (const [k, v] of Object.entries(run.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
  }
  const sum = (pick: (run: ClosedLoopResult) => number) => runs.reduce((total, run) => total + pick(run), 0);
  const durationSec = sum((r) => r.durationSec);
  const ok = sum((r) => r.ok);
  const units = sum((r) => r.units);
  return {
    connections: first.connections,
    durationSec,
    requests: sum((r) => r.requests),
    ok,
    failed: sum((r) => r.failed),
    units,
    rps: ok / durationSec,
    unitsPerSec: units / durationSec,
    p50Ms: ok > 0 ? merged.percentile(50) / 1000 : Number.NaN,
    p99Ms: ok > 0 ? merged.percentile(99) / 1000 : Number.NaN,
    meanMs: ok > 0 ? merged.mean / 1000 : Number.NaN,
    statuses,
    latencyUs: merged,
    held: sum((r) => r.held),
    heldMs: sum((r) => r.heldMs),
  };
}

/** "200: 1234, 429: 5" — response statuses and error kinds, for the report. */
export function statusSummary(statuses: Record<string, number>): string {
  return Object.entries(statuses)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}: ${v}`)
    .join(", ");
}
