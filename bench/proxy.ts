// Proxy overhead benchmark: the origin directly vs do-nothing, pass-through and Outpost Workers in workerd, same load, one run.
import { execFile, execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { IDENTITY_VARS, mintAccessToken, OWNER } from "../test/support/identity.ts";
import { startChild, type BenchChild } from "./child.ts";
import { cpuPerRequestUs, cpuSnapshot } from "./cpu.ts";
import { mergeLoads, runLoad, type LoadResult } from "./load.ts";
import { loadAverage, num } from "./report.ts";
import type { BenchContext } from "./run.ts";
import { PUBLIC_URL, wranglerWorkerOptions } from "./worker-build.ts";
import { startWorker, type RunningWorker } from "./workerd.ts";
import {
  DEFAULT_DURATION_SEC,
  DEFAULT_ROUNDS,
  DEFAULT_WARMUP_SEC,
  LABELS,
  type Measured,
  PATH,
  PROFILES,
  render,
  type Target,
  type TargetKey,
} from "./proxy-report.ts";

const execFileAsync = promisify(execFile);
const ORIGIN_HOST = fileURLToPath(new URL("./origin-host.ts", import.meta.url));

/** Builds the Outpost Worker exactly as deployed (`wrangler deploy --dry-run`) into `outdir`. */
async function buildOutpost(root: string, outdir: string): Promise<string> {
  const wrangler = join(root, "node_modules", "wrangler", "bin", "wrangler.js");
  try {
    await execFileAsync(process.execPath, [wrangler, "deploy", "--dry-run", "--outdir", outdir], {
      cwd: root,
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1" },
    });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    throw new Error(`wrangler deploy --dry-run failed:\n${e.stdout ?? ""}${e.stderr ?? ""}`);
  }
  return join(outdir, "index.js");
}

/**
 * The same identity settings and token minting as the test stacks (test/support/identity.ts): a generated
 * signing key, a fixed access list, and an owner access token as the edge issues it after a device login.
 */
async function ownerAuthorization(): Promise<string> {
  return `Bearer ${await mintAccessToken(PUBLIC_URL, OWNER)}`;
}

/** Miniflare worker options for Outpost from wrangler.toml, minus the static-assets router, pointed at `originUrl`. */
function outpostWorkerOptions(fromToml: Record<string, unknown>, scriptPath: string, originUrl: string): Record<string, unknown> {
  const options = { ...fromToml };
  // The proxied paths are run_worker_first and the Worker never calls ASSETS for them, so the assets router
  // is left out: the do-nothing and pass-through Workers have none either, which keeps the comparison like
  // for like. modulesRules only matter for unbundled sources; the bundle is one module.
  delete options.assets;
  delete options.modulesRules;
  const vars = (options.bindings ?? {}) as Record<string, unknown>;
  return {
    ...options,
    name: "outpost",
    modules: true,
    scriptPath,
    // Module names are paths relative to this; the bundle lives outside the repository.
    modulesRoot: dirname(scriptPath),
    bindings: { ...vars, ...IDENTITY_VARS, ORIGIN_URL: originUrl, PUBLIC_URL },
  };
}

/** Which commit the Worker was built from, and whether its sources had uncommitted changes. */
function sourceState(root: string): string {
  try {
    const git = (...args: string[]) => execFileSync("git", args, { cwd: root, encoding: "utf8" }).trim();
    const sha = git("rev-parse", "--short", "HEAD");
    const dirty = git("status", "--porcelain", "--", "worker", "durable-objects", "wrangler.toml", "package.json").split("\n").filter(Boolean).length;
    return dirty === 0
      ? `commit ${sha} (no uncommitted changes to the Worker)`
      : `working tree on commit ${sha}, with ${dirty} uncommitted change(s) in worker/, durable-objects/, wrangler.toml or package.json`;
  } catch {
    return "unknown (no git)";
  }
}

/** One request with the bench's headers; for echo targets, the request headers the origin received. */
async function sanityCheck(target: Target, headers: Record<string, string>, expectEcho: boolean): Promise<string[]> {
  const res = await fetch(target.url, { headers });
  target.requests++;
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${target.label}: GET ${target.url} answered ${res.status}: ${text}`);
  if (!expectEcho) return [];
  const body = JSON.parse(text) as { path?: string; headers?: Record<string, string> };
  if (body.path !== PATH) throw new Error(`${target.label}: unexpected echo body ${text}`);
  return Object.keys(body.headers ?? {}).sort();
}

/** Whether the Worker refuses the path without a token (then every measured request is verified). */
async function authEnforced(target: Target): Promise<boolean> {
  const res = await fetch(target.url);
  target.requests++;
  await res.body?.cancel();
  return res.status === 401 || res.status === 403;
}

export async function proxyOverhead(ctx: BenchContext): Promise<string> {
  const durationSec = ctx.durationSec ?? DEFAULT_DURATION_SEC;
  const warmupSec = ctx.warmupSec ?? DEFAULT_WARMUP_SEC;
  const rounds = ctx.rounds ?? DEFAULT_ROUNDS;
  const startedAt = new Date();
  const loadBefore = loadAverage();
  const tmp = await mkdtemp(join(os.tmpdir(), "outpost-bench-"));
  let origin: BenchChild | null = null;
  const workers: RunningWorker[] = [];
  const logLines: Partial<Record<TargetKey, number>> = {};
  const results = new Map<string, Measured>();
  let targets: Target[] = [];
  let enforced = false;
  let originSaw: string[] = [];
  const source = sourceState(ctx.root);
  try {
    ctx.log("building the Outpost Worker (wrangler deploy --dry-run) and starting the origin");
    const [scriptPath, spawned, authorization] = await Promise.all([
      buildOutpost(ctx.root, join(tmp, "dist")),
      startChild(ORIGIN_HOST, { BENCH_OWNER: OWNER }),
      ownerAuthorization(),
    ]);
    const headers = { authorization };
    origin = spawned;
    const originUrl = origin.urls[0]!;

    ctx.log("starting the Workers in workerd (Miniflare directly)");
    const fromToml = wranglerWorkerOptions(ctx.root);
    const compatibilityDate = String(fromToml.compatibilityDate);
    const specs = {
      noop: { worker: { name: "noop", compatibilityDate }, tsModule: join(ctx.root, "bench", "noop-worker.ts") },
      passthrough: {
        worker: { name: "passthrough", compatibilityDate, bindings: { ORIGIN_URL: originUrl } },
        tsModule: join(ctx.root, "bench", "passthrough-worker.ts"),
      },
      outpost: { worker: outpostWorkerOptions(fromToml, scriptPath, originUrl) },
    };
    const [noop, passthrough, outpost] = await Promise.all([startWorker(specs.noop), startWorker(specs.passthrough), startWorker(specs.outpost)]);
    workers.push(noop, passthrough, outpost);
    const stoppers: Partial<Record<TargetKey, RunningWorker>> = { noop, passthrough, outpost };

    const originPid = origin.pid;
    const loadgen = process.pid;
    const viaWorkerd = (w: RunningWorker, withOrigin: boolean) => ({
      workerd: w.workerdPid,
      host: w.hostPid,
      ...(withOrigin ? { origin: originPid } : {}),
      loadgen,
    });
    targets = [
      { key: "direct", label: LABELS.direct, url: originUrl + PATH, pids: { origin: originPid, loadgen }, requests: 0 },
      { key: "noop", label: LABELS.noop, url: noop.directUrl + PATH, pids: viaWorkerd(noop, false), requests: 0 },
      {
        key: "passthrough",
        label: LABELS.passthrough,
        url: passthrough.directUrl + PATH,
        pids: viaWorkerd(passthrough, true),
        requests: 0,
      },
      { key: "outpost", label: LABELS.outpost, url: outpost.directUrl + PATH, pids: viaWorkerd(outpost, true), requests: 0 },
      // The same Outpost instance through Miniflare's main socket, i.e. the URL `await mf.ready` returns.
      { key: "outpostEntry", label: LABELS.outpostEntry, url: outpost.entryUrl + PATH, pids: viaWorkerd(outpost, true), requests: 0 },
    ];
    for (const target of targets) {
      const seen = await sanityCheck(target, headers, target.key !== "noop");
      if (target.key === "outpost") originSaw = seen;
    }
    enforced = await authEnforced(targets.find((t) => t.key === "outpost")!);

    // Targets are interleaved round by round within each load profile, so a burst from other jobs on a shared
    // machine lands on one round of every target rather than on all of one target's measurement.
    for (const connections of PROFILES) {
      const runs = new Map<TargetKey, LoadResult[]>();
      const cpuMs = new Map<TargetKey, Record<string, number>>();
      for (let round = 1; round <= rounds; round++) {
        for (const target of targets) {
          if (round === 1) {
            ctx.log(`${target.key}: ${connections} connection(s), ${warmupSec} s warm-up, ${rounds} × ${durationSec} s`);
            const warm = await runLoad({ url: target.url, headers, connections, durationSec: warmupSec });
            target.requests += warm.ok + warm.failed;
          }
          const before = cpuSnapshot(target.pids);
          const result = await runLoad({ url: target.url, headers, connections, durationSec });
          const after = cpuSnapshot(target.pids);
          target.requests += result.ok + result.failed;
          runs.set(target.key, [...(runs.get(target.key) ?? []), result]);
          const spent = cpuMs.get(target.key) ?? {};
          for (const name of Object.keys(before)) spent[name] = (spent[name] ?? 0) + after[name]! - before[name]!;
          cpuMs.set(target.key, spent);
          ctx.log(
            `  ${target.key} round ${round}: ${num(result.rps, 0)} req/s, p50 ${num(result.p50Ms, 3)} ms, ` +
              `p99 ${num(result.p99Ms, 3)} ms, failed ${result.failed}`,
          );
        }
      }
      for (const target of targets) {
        const all = runs.get(target.key)!;
        const merged = mergeLoads(all);
        const zero = Object.fromEntries(Object.keys(target.pids).map((name) => [name, 0]));
        const cpuUs = cpuPerRequestUs(zero, cpuMs.get(target.key)!, merged.ok);
        results.set(`${target.key}@${connections}`, { ...merged, cpuUs, roundsRps: all.map((r) => r.rps) });
      }
    }
    for (const [key, worker] of Object.entries(stoppers) as [TargetKey, RunningWorker][]) {
      logLines[key] = await worker.stop();
    }
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await origin?.stop();
    await rm(tmp, { recursive: true, force: true });
  }

  return render({
    ctx,
    durationSec,
    warmupSec,
    rounds,
    startedAt,
    loadBefore,
    loadAfter: loadAverage(),
    targets,
    results,
    logLines,
    source,
    enforced,
    originSaw,
  });
}
