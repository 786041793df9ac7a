// Identity benchmark (issue 3): what checking the Bearer token costs the proxy, the time of one ES256 verification in
// workerd (cached and uncached), and the design it replaces (a Node gateway calling a user-lookup endpoint per request).
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { mintAccessToken, OWNER } from "../test/support/identity.ts";
import { startChild, type BenchChild } from "./child.ts";
import { cpuMs, cpuTotal } from "./cpu.ts";
import { mergeClosedLoops, runClosedLoop, statusSummary, type ClosedLoopResult } from "./http-load.ts";
import { loadAverage, num } from "./report.ts";
import type { BenchContext } from "./run.ts";
import { median } from "./stats.ts";
import { BENCH_WORKERS, bundleWorker, PUBLIC_URL, sourceState, startBundledWorker, WORKER_SOURCES } from "./worker-build.ts";
import type { RunningWorker } from "./workerd.ts";
import {
  CONNECTIONS,
  DEFAULT_DURATION_SEC,
  DEFAULT_ROUNDS,
  DEFAULT_WARMUP_SEC,
  type Measured,
  type Paired,
  PAIRS,
  PATH,
  render,
  SLICE_SEC,
  SLOW_LOOKUP_MS,
  TIMING,
  TIMING_REPEATS,
  type TimingOp,
  type TimingResult,
  UNCACHED_TOKENS,
  type Variant,
  type VariantKey,
} from "./auth-report.ts";

const ORIGIN_HOST = fileURLToPath(new URL("./origin-host.ts", import.meta.url));
const LOOKUP_HOST = fileURLToPath(new URL("./user-lookup-host.ts", import.meta.url));
const GATEWAY_HOST = fileURLToPath(new URL("./node-gateway-host.ts", import.meta.url));

async function timeOps(worker: RunningWorker, token: string): Promise<Map<TimingOp, TimingResult>> {
  const out = new Map<TimingOp, TimingResult>();
  const call = async (op: TimingOp, n: number) => {
    const c0 = cpuMs(worker.workerdPid);
    const t0 = performance.now();
    const res = await fetch(`${worker.directUrl}/?op=${op}&n=${n}`, { headers: { authorization: `Bearer ${token}` } });
    const body = (await res.json()) as { elapsedMs: number; error?: string };
    const wallMs = performance.now() - t0;
    const cpu = cpuMs(worker.workerdPid) - c0;
    if (!res.ok) throw new Error(`timing worker: ${op} answered ${res.status} ${JSON.stringify(body)}`);
    return { inside: body.elapsedMs, wall: wallMs, cpu };
  };
  // The fixed cost of one call (a verification to warm up, the timers, the HTTP round trip), subtracted below.
  const base = { inside: [] as number[], wall: [] as number[], cpu: [] as number[] };
  for (let r = 0; r < TIMING_REPEATS; r++) {
    const b = await call("none", 1);
    base.inside.push(b.inside);
    base.wall.push(b.wall);
    base.cpu.push(b.cpu);
  }
  const fixed = { inside: median(base.inside), wall: median(base.wall), cpu: median(base.cpu) };
  for (const op of ["none", "cached", "verify", "assert"] as TimingOp[]) {
    const n = TIMING[op];
    const inside: number[] = [];
    const wall: number[] = [];
    const cpu: number[] = [];
    for (let r = 0; r < TIMING_REPEATS; r++) {
      const m = await call(op, n);
      inside.push(((m.inside - fixed.inside) * 1000) / n);
      wall.push(((m.wall - fixed.wall) * 1000) / n);
      cpu.push(((m.cpu - fixed.cpu) * 1000) / n);
    }
    out.set(op, { op, n, insideUs: median(inside), wallUs: median(wall), cpuUs: median(cpu) });
  }
  return out;
}

export async function authBench(ctx: BenchContext): Promise<string> {
  const durationSec = ctx.durationSec ?? DEFAULT_DURATION_SEC;
  const warmupSec = ctx.warmupSec ?? DEFAULT_WARMUP_SEC;
  const rounds = ctx.rounds ?? DEFAULT_ROUNDS;
  const startedAt = new Date();
  const loadBefore = loadAverage();
  const started = performance.now();
  const tmp = await mkdtemp(join(os.tmpdir(), "outpost-bench-auth-"));
  const children: BenchChild[] = [];
  const workers: RunningWorker[] = [];
  try {
    ctx.log("bundling the Outpost Worker and its bench-only variants; starting workerd, the origin and the Node servers");
    const source = sourceState();
    const noAuthSwap = { [WORKER_SOURCES.middleware]: BENCH_WORKERS.noAuthMiddleware };
    const [authScript, noAuthScript, noIdentityScript, timingScript] = await Promise.all([
      bundleWorker({ entry: WORKER_SOURCES.entry, outfile: join(tmp, "auth", "index.js") }),
      bundleWorker({ entry: WORKER_SOURCES.entry, outfile: join(tmp, "noauth", "index.js"), swap: noAuthSwap }),
      bundleWorker({
        entry: WORKER_SOURCES.entry,
        outfile: join(tmp, "noidentity", "index.js"),
        swap: { ...noAuthSwap, [WORKER_SOURCES.assertion]: BENCH_WORKERS.unsignedAssertion },
      }),
      bundleWorker({ entry: BENCH_WORKERS.authTiming, outfile: join(tmp, "timing", "index.js") }),
    ]);
    const [origin, lookupFast, lookupSlow] = await Promise.all([
      startChild(ORIGIN_HOST, { BENCH_OWNER: OWNER }),
      startChild(LOOKUP_HOST, { BENCH_LOOKUP_DELAY_MS: "0" }),
      startChild(LOOKUP_HOST, { BENCH_LOOKUP_DELAY_MS: String(SLOW_LOOKUP_MS) }),
    ]);
    children.push(origin, lookupFast, lookupSlow);
    const originUrl = origin.urls[0]!;
    const vars = { ORIGIN_URL: originUrl };
    // The uncached row gets its own instance of the same bundle, so its churn (2,000 tokens through a 1,000-entry cache,
    // the garbage that leaves) never lands on the "with auth" row's isolate.
    const [authW, uncachedW, noAuthW, noIdentityW, timingW, nodeProxy, nodeLookup, nodeLookupSlow] = await Promise.all([
      startBundledWorker("outpost", authScript, vars),
      startBundledWorker("outpost-uncached", authScript, vars),
      startBundledWorker("outpost-noauth", noAuthScript, vars),
      startBundledWorker("outpost-noidentity", noIdentityScript, vars),
      startBundledWorker("auth-timing", timingScript, {}),
      startChild(GATEWAY_HOST, { BENCH_ORIGIN_URL: originUrl }),
      startChild(GATEWAY_HOST, { BENCH_ORIGIN_URL: originUrl, BENCH_LOOKUP_URL: lookupFast.urls[0]! }),
      startChild(GATEWAY_HOST, { BENCH_ORIGIN_URL: originUrl, BENCH_LOOKUP_URL: lookupSlow.urls[0]! }),
    ]);
    workers.push(authW, uncachedW, noAuthW, noIdentityW, timingW);
    children.push(nodeProxy, nodeLookup, nodeLookupSlow);

    const token = await mintAccessToken(PUBLIC_URL, OWNER);
    ctx.log(`minting ${UNCACHED_TOKENS} distinct owner tokens for the uncached row`);
    const manyTokens = await Promise.all(Array.from({ length: UNCACHED_TOKENS }, () => mintAccessToken(PUBLIC_URL, OWNER)));
    const bearer = `Bearer ${token}`;
    const viaWorker = (w: RunningWorker) => ({ workerd: w.workerdPid, host: w.hostPid, origin: origin.pid });
    const variants: Variant[] = [
      { key: "auth", url: authW.directUrl, authorization: () => bearer, pids: viaWorker(authW) },
      { key: "authUncached", url: uncachedW.directUrl, authorization: (i) => `Bearer ${manyTokens[i % UNCACHED_TOKENS]!}`, pids: viaWorker(uncachedW) },
      { key: "noAuth", url: noAuthW.directUrl, authorization: () => bearer, pids: viaWorker(noAuthW) },
      { key: "noIdentity", url: noIdentityW.directUrl, authorization: () => bearer, pids: viaWorker(noIdentityW) },
      { key: "nodeProxy", url: nodeProxy.urls[0]!, authorization: () => bearer, pids: { gateway: nodeProxy.pid, origin: origin.pid } },
      {
        key: "nodeLookup",
        url: nodeLookup.urls[0]!,
        authorization: () => bearer,
        pids: { gateway: nodeLookup.pid, lookup: lookupFast.pid, origin: origin.pid },
      },
      {
        key: "nodeLookupSlow",
        url: nodeLookupSlow.urls[0]!,
        authorization: () => bearer,
        pids: { gateway: nodeLookupSlow.pid, lookup: lookupSlow.pid, origin: origin.pid },
      },
    ];

    // Sanity: every target answers 200 through to the origin; the real Worker refuses a request without a token.
    for (const v of variants) {
      const res = await fetch(v.url + PATH, { headers: { authorization: v.authorization(0) } });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`${v.key}: GET ${PATH} answered ${res.status}: ${text}`);
    }
    const refused = await fetch(authW.directUrl + PATH);
    await refused.body?.cancel();
    if (refused.status !== 401) throw new Error(`the Outpost Worker answered ${refused.status} without a token, not 401`);

    const runs = new Map<VariantKey, ClosedLoopResult[]>();
    const cpu = new Map<VariantKey, number>();
    const offsets = new Map<VariantKey, number>();
    const run = async (v: Variant, sec: number) => {
      const base = offsets.get(v.key) ?? 0;
      const result = await runClosedLoop({
        url: v.url,
        connections: CONNECTIONS,
        durationSec: sec,
        next: (i) => ({ method: "GET", path: PATH, headers: { authorization: v.authorization(base + i) } }),
      });
      offsets.set(v.key, base + result.requests);
      return result;
    };
    const measure = async (v: Variant, round: number) => {
      const c0 = cpuTotal(v.pids);
      const result = await run(v, durationSec);
      cpu.set(v.key, (cpu.get(v.key) ?? 0) + cpuTotal(v.pids) - c0);
      runs.set(v.key, [...(runs.get(v.key) ?? []), result]);
      ctx.log(
        `  ${v.key} round ${round}: ${num(result.rps, 0)} req/s, p50 ${num(result.p50Ms, 2)} ms, p99 ${num(result.p99Ms, 2)} ms, ${statusSummary(result.statuses)}`,
      );
    };
    // The 270 ms row leaves the CPU nearly idle, and whatever else runs on the machine fills it, landing on the next
    // row; so it is measured on its own at the end, and the CPU-bound rows are interleaved among themselves.
    const slow = variants.find((v) => v.key === "nodeLookupSlow")!;
    const busy = variants.filter((v) => v !== slow);
    // Every row warms up before anything is measured (the origin and the load generator warm up with the first).
    for (const v of busy) {
      ctx.log(`${v.key}: ${warmupSec} s warm-up`);
      await run(v, warmupSec);
    }
    for (let round = 1; round <= rounds; round++) {
      // Rows interleaved, and the order rotated each round, so no row always follows the same one.
      const shift = (round - 1) % busy.length;
      for (const v of [...busy.slice(shift), ...busy.slice(0, shift)]) await measure(v, round);
    }
    // The target's measurement: "with auth" and "without auth" alternate in 1 s slices (A B, B A, …), and each pair's
    // ratio is taken, so drifts in what else the machine is doing cancel within a pair instead of landing on one row.
    ctx.log(`paired: with auth vs without auth, ${PAIRS} pairs of ${SLICE_SEC} s slices`);
    const authV = variants.find((v) => v.key === "auth")!;
    const noAuthV = variants.find((v) => v.key === "noAuth")!;
    const paired: Paired = { ratios: [], cpuUs: { auth: 0, noAuth: 0 }, ok: { auth: 0, noAuth: 0 }, rps: { auth: [], noAuth: [] } };
    for (let k = 0; k < PAIRS; k++) {
      const rps: Record<string, number> = {};
      for (const v of k % 2 === 0 ? [authV, noAuthV] : [noAuthV, authV]) {
        const key = v.key as "auth" | "noAuth";
        const c0 = cpuTotal(v.pids);
        const result = await run(v, SLICE_SEC);
        paired.cpuUs[key] += (cpuTotal(v.pids) - c0) * 1000;
        paired.ok[key] += result.ok;
        paired.rps[key].push(result.rps);
        rps[key] = result.rps;
      }
      paired.ratios.push(rps.auth! / rps.noAuth!);
    }
    ctx.log(`  paired ratios: ${paired.ratios.map((r) => num(r, 2)).join(" ")}`);

    ctx.log(`${slow.key}: ${warmupSec} s warm-up`);
    await run(slow, warmupSec);
    for (let round = 1; round <= rounds; round++) await measure(slow, round);

    const results = new Map<VariantKey, Measured>();
    for (const v of variants) {
      const all = runs.get(v.key)!;
      const merged = mergeClosedLoops(all);
      results.set(v.key, { ...merged, roundsRps: all.map((r) => r.rps), cpuUsPerRequest: ((cpu.get(v.key) ?? 0) * 1000) / merged.ok });
    }

    ctx.log("timing verification, the cached check and assertion signing inside workerd");
    const timing = await timeOps(timingW, token);
    for (const t of timing.values())
      ctx.log(`  ${t.op}: ${num(t.insideUs, 1)} µs inside, ${num(t.wallUs, 1)} µs wall, ${num(t.cpuUs, 1)} µs CPU per iteration`);

    return render({
      ctx,
      durationSec,
      warmupSec,
      rounds,
      startedAt,
      loadBefore,
      loadAfter: loadAverage(),
      elapsedSec: (performance.now() - started) / 1000,
      results,
      timing,
      paired,
      source,
    });
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await Promise.all(children.map((c) => c.stop()));
    await rm(tmp, { recursive: true, force: true });
  }
}
