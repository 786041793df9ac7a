// Wraps autocannon: one bounded keep-alive GET load against a loopback URL, with latency kept to the microsecond.
import type { EventEmitter } from "node:events";
import { createRequire } from "node:module";
import { createHistogram, type RecordableHistogram } from "node:perf_hooks";

// autocannon ships no types; this is the part of its programmatic API used here.
interface AutocannonResult {
  /** Seconds the run actually took (autocannon rounds to 10 ms). */
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
}
type AutocannonInstance = EventEmitter & PromiseLike<AutocannonResult>;
type Autocannon = (options: Record<string, unknown>) => AutocannonInstance;

const autocannon = createRequire(import.meta.url)("autocannon") as Autocannon;

export interface LoadOptions {
  url: string;
  connections: number;
  /** Whole seconds: autocannon stops on its 1 s tick, so a fraction runs to the next whole second. */
  durationSec: number;
  /** Extra request headers, e.g. Authorization. */
  headers?: Record<string, string>;
}

export interface LoadResult {
  connections: number;
  /** Seconds the measured run took. */
  durationSec: number;
  /** 2xx responses. */
  ok: number;
  /** Non-2xx responses, connection errors and timeouts. */
  failed: number;
  /** 2xx responses per second over the whole run. */
  rps: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  /** 2xx latencies in µs, for merging runs. */
  latencyUs: RecordableHistogram;
}

/**
 * Runs autocannon with `connections` keep-alive connections (no pipelining) for `durationSec`.
 * autocannon's own latency histogram has 1 ms resolution, too coarse for sub-millisecond
 * overheads, so 2xx latencies are recorded here from its per-response event (hrtime, in µs).
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const histogram = createHistogram({ lowest: 1, highest: 60_000_000, figures: 3 });
  let ok = 0;
  const instance = autocannon({
    url: options.url,
    headers: options.headers ?? {},
    connections: options.connections,
    duration: options.durationSec,
    pipelining: 1,
    timeout: 10,
    renderProgressBar: false,
    renderResultsTable: false,
    renderLatencyTable: false,
  });
  instance.on("response", (_client: unknown, status: number, _bytes: number, responseTimeMs: number) => {
    if (status < 200 || status > 299) return;
    ok++;
    histogram.record(Math.max(1, Math.round(responseTimeMs * 1000)));
  });
  const result = await instance;
  return summarise(options.connections, result.duration, ok, result.non2xx + result.errors + result.timeouts, histogram);
}

function summarise(connections: number, durationSec: number, ok: number, failed: number, latencyUs: RecordableHistogram): LoadResult {
  return {
    connections,
    durationSec,
    ok,
    failed,
    rps: durationSec > 0 ? ok / durationSec : 0,
    p50Ms: ok > 0 ? latencyUs.percentile(50) / 1000 : Number.NaN,
    p99Ms: ok > 0 ? latencyUs.percentile(99) / 1000 : Number.NaN,
    meanMs: ok > 0 ? latencyUs.mean / 1000 : Number.NaN,
    latencyUs,
  };
}

/** Several runs of the same load as one: counts and durations added, latency histograms merged. */
export function mergeLoads(runs: LoadResult[]): LoadResult {
  const first = runs[0];
  if (!first) throw new Error("mergeLoads: no runs");
  const merged = createHistogram({ lowest: 1, highest: 60_000_000, figures: 3 });
  for (const run of runs) merged.add(run.latencyUs);
  const sum = (pick: (run: LoadResult) => number) => runs.reduce((total, run) => total + pick(run), 0);
  return summarise(
    first.connections,
    sum((run) => run.durationSec),
    sum((run) => run.ok),
    sum((run) => run.failed),
    merged,
  );
}
