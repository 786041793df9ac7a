// Presence benchmark (issue 4): heartbeat ingest into one hub, expiry-to-event time, fan-out to 1,000 sockets and rows
// written per heartbeat, side by side with the design it replaces (Node + per-request user lookup + Redis SET EX).
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import { mintAccessToken, OWNER } from "../test/support/identity.ts";
import { startChild, type BenchChild } from "./child.ts";
import { cpuTotal } from "./cpu.ts";
import { mergeClosedLoops, runClosedLoop, statusSummary, type ClosedLoopResult } from "./http-load.ts";
import { hubExpiry, loadUnrelatedKeys, redisExpiry } from "./presence-expiry.ts";
import { fanout } from "./presence-fanout.ts";
import { batchSpec, countAccepted, countRejected, paced, singleBeatSpec, type IngestKey, type IngestResult, type IngestTarget } from "./presence-ingest.ts";
import { render } from "./presence-report.ts";
import {
  addDelta,
  BATCH,
  CONNECTIONS,
  DEFAULT_DURATION_SEC,
  DEFAULT_ROUNDS,
  DEFAULT_WARMUP_SEC,
  diffStats,
  EXPIRY_SESSIONS,
  EXPIRY_TTL_S,
  FANOUT_SOCKETS,
  hubStats,
  INGEST_TTL_S,
  LOOKUP_HOST,
  memberEmail,
  MEMBERS,
  POOL,
  REDIS_HOST,
  SESSIONS_PER_MEMBER,
  sleep,
  SLOW_LOOKUP_MS,
  startStubOrigin,
  UNRELATED_KEYS,
  UNRELATED_TTL_S,
  ZERO_DELTA,
  type StatsDelta,
} from "./presence-shared.ts";
import { startRedis, type RunningRedis } from "./redis.ts";
import { loadAverage, num } from "./report.ts";
import { RespClient } from "./resp.ts";
import type { BenchContext } from "./run.ts";
import { percentile } from "./stats.ts";
import { BENCH_WORKERS, bundleWorker, PUBLIC_URL, sourceState, startBundledWorker } from "./worker-build.ts";
import type { RunningWorker } from "./workerd.ts";

export async function presenceBench(ctx: BenchContext): Promise<string> {
  const durationSec = ctx.durationSec ?? DEFAULT_DURATION_SEC;
  const warmupSec = ctx.warmupSec ?? DEFAULT_WARMUP_SEC;
  const rounds = ctx.rounds ?? DEFAULT_ROUNDS;
  const startedAt = new Date();
  const loadBefore = loadAverage();
  const tmp = await mkdtemp(join(os.tmpdir(), "outpost-bench-presence-"));
  const children: BenchChild[] = [];
  const workers: RunningWorker[] = [];
  let redis: RunningRedis | null = null;
  let stub: Awaited<ReturnType<typeof startStubOrigin>> | null = null;
  const started = performance.now();
  try {
    ctx.log("bundling the Outpost Worker (+ /__bench/hub-stats) and starting workerd, Redis and the Node servers");
    const source = sourceState();
    const scriptPath = await bundleWorker({ entry: BENCH_WORKERS.hubStatsEntry, outfile: join(tmp, "presence", "index.js") });
    stub = await startStubOrigin();
    const members = Array.from({ length: MEMBERS }, (_, m) => memberEmail(m));
    const vars = (ttl: number, interval: number) => ({
      ORIGIN_URL: stub!.url,
      MEMBER_EMAILS: ["member@example.com", ...members].join(","),
      HEARTBEAT_TTL_SECONDS: String(ttl),
      HEARTBEAT_INTERVAL_SECONDS: String(interval),
    });
    redis = await startRedis();
    const [ingestHub, expiryHub, lookupFast, lookupSlow] = await Promise.all([
      startBundledWorker("outpost-ingest", scriptPath, vars(INGEST_TTL_S, 10)),
      startBundledWorker("outpost-expiry", scriptPath, vars(EXPIRY_TTL_S, 2)),
      startChild(LOOKUP_HOST, { BENCH_LOOKUP_DELAY_MS: "0" }),
      startChild(LOOKUP_HOST, { BENCH_LOOKUP_DELAY_MS: String(SLOW_LOOKUP_MS) }),
    ]);
    workers.push(ingestHub, expiryHub);
    children.push(lookupFast, lookupSlow);
    const redisEnv = (lookup: BenchChild) => ({ BENCH_LOOKUP_URL: lookup.urls[0]!, BENCH_REDIS_PORT: String(redis!.port), BENCH_TTL_SECONDS: "15" });
    const [redisFast, redisSlow] = await Promise.all([startChild(REDIS_HOST, redisEnv(lookupFast)), startChild(REDIS_HOST, redisEnv(lookupSlow))]);
    children.push(redisFast, redisSlow);
    const [ownerToken, memberToken, ...tokens] = await Promise.all([
      mintAccessToken(PUBLIC_URL, OWNER),
      mintAccessToken(PUBLIC_URL, "member@example.com"),
      ...members.map((email) => mintAccessToken(PUBLIC_URL, email)),
    ]);

    // 1. Fan-out, on the ingest hub while it is still empty (each socket's opening snapshot is then tiny).
    ctx.log(`fan-out: opening ${FANOUT_SOCKETS} presence WebSockets`);
    const fan = await fanout(ingestHub, ownerToken!, memberToken!, ctx.log);
    ctx.log(`fan-out: per-socket p50 ${num(percentile(fan.perSocketMs, 50), 1)} ms, all-got-it p50 ${num(percentile(fan.allGotItMs, 50), 1)} ms`);

    // 2. Ingest. Every session of the pool is created first (a session's first beat writes it), then all runs are steady.
    ctx.log(`ingest: creating ${POOL} sessions (${MEMBERS} members × ${SESSIONS_PER_MEMBER})`);
    const createBefore = await hubStats(ingestHub);
    const createStarted = performance.now();
    const creation = await runClosedLoop({
      url: ingestHub.directUrl,
      connections: 4,
      durationSec: 300,
      maxRequests: POOL / 100,
      next: (j) => batchSpec(tokens, j * 100, 100),
      units: countAccepted,
    });
    if (creation.units !== POOL) throw new Error(`creating the pool: ${creation.units} of ${POOL} accepted (${statusSummary(creation.statuses)})`);
    // Let the hub deliver the creation events to the stub origin before steady state is measured.
    for (let i = 0; i < 200 && (await hubStats(ingestHub)).outboxDepth > 0; i++) await sleep(100);
    const createAfter = await hubStats(ingestHub);
    const createDelta = diffStats(createBefore, createAfter);
    const createSec = (performance.now() - createStarted) / 1000;
    ctx.log(`ingest: created in ${num(createSec, 1)} s (${createDelta.rowsWritten} rows for ${createDelta.heartbeats} first beats)`);

    const lastSent = new Float64Array(POOL);
    const targets: IngestTarget[] = [
      {
        key: "hubSingle",
        url: ingestHub.directUrl,
        next: (s) => paced(lastSent, s, 1, singleBeatSpec(tokens, s)),
        step: 1,
        cursor: "hub",
        pids: { workerd: ingestHub.workerdPid, host: ingestHub.hostPid },
        hub: true,
      },
      {
        key: "hubBatch",
        url: ingestHub.directUrl,
        next: (s) => paced(lastSent, s, BATCH, batchSpec(tokens, s)),
        step: BATCH,
        cursor: "hub",
        units: countAccepted,
        pids: { workerd: ingestHub.workerdPid, host: ingestHub.hostPid },
        hub: true,
      },
      {
        key: "redisFast",
        url: redisFast.urls[0]!,
        next: (s) => singleBeatSpec(tokens, s),
        step: 1,
        cursor: "redisFast",
        pids: { node: redisFast.pid, lookup: lookupFast.pid, redis: redis.pid },
        hub: false,
      },
      {
        key: "redisSlow",
        url: redisSlow.urls[0]!,
        next: (s) => singleBeatSpec(tokens, s),
        step: 1,
        cursor: "redisSlow",
        pids: { node: redisSlow.pid, lookup: lookupSlow.pid, redis: redis.pid },
        hub: false,
      },
    ];
    const cursors = new Map<string, number>();
    const runs = new Map<IngestKey, ClosedLoopResult[]>();
    const rejected = new Map<IngestKey, number>();
    const stats = new Map<IngestKey, StatsDelta>();
    const cpu = new Map<IngestKey, number>();
    const run = async (target: IngestTarget, sec: number) => {
      // Aligned to the step, so a batch never straddles two members.
      const base = Math.ceil((cursors.get(target.cursor) ?? 0) / target.step) * target.step;
      let refused = 0;
      const result = await runClosedLoop({
        url: target.url,
        connections: CONNECTIONS,
        durationSec: sec,
        next: (i) => target.next(base + i * target.step),
        units: target.units
          ? (status, body) => {
              refused += countRejected(status, body);
              return target.units!(status, body);
            }
          : undefined,
      });
      cursors.set(target.cursor, base + result.requests * target.step);
      return { result, refused };
    };
    const measure = async (target: IngestTarget, round: number) => {
      const s0 = target.hub ? await hubStats(ingestHub) : null;
      const c0 = cpuTotal(target.pids);
      const { result, refused } = await run(target, durationSec);
      const c1 = cpuTotal(target.pids);
      const s1 = target.hub ? await hubStats(ingestHub) : null;
      runs.set(target.key, [...(runs.get(target.key) ?? []), result]);
      rejected.set(target.key, (rejected.get(target.key) ?? 0) + refused);
      if (s0 && s1) stats.set(target.key, addDelta(stats.get(target.key) ?? ZERO_DELTA, diffStats(s0, s1)));
      cpu.set(target.key, (cpu.get(target.key) ?? 0) + (c1 - c0));
      ctx.log(
        `  ${target.key} round ${round}: ${num(result.unitsPerSec, 0)} heartbeats/s (${num(result.rps, 0)} req/s), ` +
          `p50 ${num(result.p50Ms, 2)} ms, p99 ${num(result.p99Ms, 2)} ms, ${statusSummary(result.statuses)}` +
          (refused > 0 ? `, ${refused} heartbeats refused in batches` : "") +
          (result.held > 0 ? `, ${result.held} requests held ${num(result.heldMs, 0)} ms by the per-session pacing` : ""),
      );
    };
    // The 270 ms row leaves the CPU nearly idle and whatever else runs on the machine fills it, landing on the next
    // row: it is measured on its own after the others, which are interleaved among themselves.
    const slowTarget = targets.find((t) => t.key === "redisSlow")!;
    const busy = targets.filter((t) => t !== slowTarget);
    for (const target of busy) {
      ctx.log(`ingest ${target.key}: ${warmupSec} s warm-up`);
      await run(target, warmupSec);
    }
    for (let round = 1; round <= rounds; round++) {
      const shift = (round - 1) % busy.length;
      for (const target of [...busy.slice(shift), ...busy.slice(0, shift)]) await measure(target, round);
    }
    ctx.log(`ingest ${slowTarget.key}: ${warmupSec} s warm-up`);
    await run(slowTarget, warmupSec);
    for (let round = 1; round <= rounds; round++) await measure(slowTarget, round);
    const ingest = new Map<IngestKey, IngestResult>();
    for (const target of targets) {
      const all = runs.get(target.key)!;
      const merged = mergeClosedLoops(all);
      ingest.set(target.key, {
        ...merged,
        roundsUnitsPerSec: all.map((r) => r.unitsPerSec),
        rejected: rejected.get(target.key) ?? 0,
        stats: stats.get(target.key) ?? ZERO_DELTA,
        cpuUsPerUnit: merged.units > 0 ? ((cpu.get(target.key) ?? 0) * 1000) / merged.units : Number.NaN,
      });
    }
    const ingestFinal = await hubStats(ingestHub);
    // The ingest hub's 12,800 sessions would all lapse a minute later: stop it before the timing-sensitive tests.
    await ingestHub.stop();
    workers.splice(workers.indexOf(ingestHub), 1);
    await Promise.all([redisFast.stop(), redisSlow.stop()]);
    {
      const client = await RespClient.connect(redis.port);
      await client.command("FLUSHALL");
      client.close();
    }

    // 3. Expiry: the hub, then Redis alone, then Redis with 100,000 unrelated keys carrying long TTLs.
    ctx.log(`expiry: hub, ${EXPIRY_SESSIONS} sessions, TTL ${EXPIRY_TTL_S} s`);
    const hubExp = await hubExpiry(expiryHub, ownerToken!, memberToken!);
    ctx.log(
      `  hub: ${hubExp.arrived}/${EXPIRY_SESSIONS} events, p50 ${num(percentile(hubExp.latencyMs, 50), 1)} ms, p99 ${num(percentile(hubExp.latencyMs, 99), 1)} ms after the lapse`,
    );
    ctx.log("expiry: Redis alone");
    const redisAlone = await redisExpiry(redis, "Redis keyspace notification (`__keyevent@0__:expired`), Redis otherwise empty", "alone:");
    ctx.log(
      `  Redis alone: ${redisAlone.arrived}/${EXPIRY_SESSIONS} events, p50 ${num(percentile(redisAlone.latencyMs, 50), 1)} ms, p99 ${num(percentile(redisAlone.latencyMs, 99), 1)} ms`,
    );
    ctx.log(`expiry: loading ${UNRELATED_KEYS} unrelated keys (EX ${UNRELATED_TTL_S})`);
    const dbsize = await loadUnrelatedKeys(redis);
    const redisBusy = await redisExpiry(
      redis,
      `Redis keyspace notification, with ${UNRELATED_KEYS.toLocaleString("en-US")} unrelated keys (EX ${UNRELATED_TTL_S})`,
      "busy:",
    );
    redisBusy.note = `DBSIZE ${dbsize} before the 200 keys were written`;
    ctx.log(`  Redis + ${UNRELATED_KEYS} keys: ${redisBusy.arrived}/${EXPIRY_SESSIONS} events within 2 × TTL`);

    const elapsedSec = (performance.now() - started) / 1000;
    return render({
      ctx,
      durationSec,
      warmupSec,
      rounds,
      startedAt,
      loadBefore,
      loadAfter: loadAverage(),
      elapsedSec,
      fan,
      createDelta,
      ingest,
      ingestFinal,
      stubEvents: stub.eventsReceived(),
      expiry: [hubExp, redisAlone, redisBusy],
      hubExpiryStats: hubExp.stats,
      redisVersion: redis.version,
      redisArgs: redis.args,
      source,
    });
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await Promise.all(children.map((c) => c.stop()));
    await redis?.stop();
    await stub?.close();
    await rm(tmp, { recursive: true, force: true });
  }
}
