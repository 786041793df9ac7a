// Origin overhead benchmark: the app called directly vs through the origin (assertion check + forward), same load, one run.
// `node bench/origin.ts [--duration S] [--rounds N] [--note TEXT] [--no-write]` writes the "origin" section of BENCHMARKS.md.
import { spawn, type ChildProcess } from "node:child_process";
import { createPrivateKey, randomUUID, sign, type KeyObject } from "node:crypto";
import http from "node:http";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createHistogram, type RecordableHistogram } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { createOutpostVerifier } from "../origin/verify.ts";
import { TEST_SIGNING_KEY } from "../test/support/identity.ts";
import { publicJwk, spawnOrigin, trustEdgeEnv, type SpawnedOrigin } from "../test/support/spawn-origin.ts";
import { cpuMs } from "./cpu.ts";
import { loadAverage, machineInfo, num, table, writeSection } from "./report.ts";
import type { BenchContext, BenchmarkFn } from "./run.ts";

const ISSUER = "http://localhost:8787";
const PATH = "/api/bench?x=1";
const TARGET_ADDED_P50_MS = 0.5;
const PROFILES = [1, 10] as const;
const DEFAULT_DURATION_SEC = 3;
const DEFAULT_ROUNDS = 3;
const WARMUP_SEC = 1;

// The app behind --upstream: answers every request with a small JSON body, in its own process.
const APP_SOURCE = `
const http = require("node:http");
const body = JSON.stringify({ ok: true, pad: "x".repeat(200) });
const server = http.createServer((req, res) => {
  req.resume();
  req.on("end", () => { res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) }); res.end(body); });
});
server.keepAliveTimeout = 60000;
server.listen(0, "127.0.0.1", () => console.log("listening on http://127.0.0.1:" + server.address().port));
`;

/** ES256 assertions minted synchronously (outside the timed part), exactly as the edge shapes them. */
function minter(): (method: string, htu: string) => string {
  const key: KeyObject = createPrivateKey({ key: TEST_SIGNING_KEY as unknown as import("node:crypto").JsonWebKey, format: "jwk" });
  const header = Buffer.from(JSON.stringify({ alg: "ES256", typ: "outpost-assertion+jwt", kid: TEST_SIGNING_KEY.kid })).toString("base64url");
  return (method, htu) => {
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: ISSUER,
      aud: "origin",
      sub: "outpost:owner@example.com",
      email: "owner@example.com",
      role: "owner",
      htm: method,
      htu,
      jti: randomUUID(),
      iat: now,
      exp: now + 60,
    };
    const input = `${header}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}`;
    return `${input}.${sign("sha256", Buffer.from(input), { key, dsaEncoding: "ieee-p1363" }).toString("base64url")}`;
  };
}

interface RunResult {
  ok: number;
  failed: number;
  seconds: number;
  latencyUs: RecordableHistogram;
}

/** `connections` keep-alive loops, each sending one GET at a time for `seconds`; only the request itself is timed. */
async function runLoad(base: string, connections: number, seconds: number, assertionFor: (() => string) | null): Promise<RunResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const latencyUs = createHistogram({ lowest: 1, highest: 60_000_000, figures: 3 });
  const url = new URL(PATH, base);
  const stopAt = performance.now() + seconds * 1000;
  let ok = 0;
  let failed = 0;
  const once = (headers: Record<string, string>) =>
    new Promise<number>((resolve) => {
      const req = http.request(url, { agent, headers }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      });
      req.on("error", () => resolve(0));
      req.end();
    });
  const loop = async () => {
    while (performance.now() < stopAt) {
      const headers: Record<string, string> = assertionFor ? { "outpost-assertion": assertionFor() } : {};
      const started = performance.now();
      const status = await once(headers);
      const us = Math.max(1, Math.round((performance.now() - started) * 1000));
      if (status === 200) {
        ok++;
        latencyUs.record(us);
      } else failed++;
    }
  };
  const began = performance.now();
  await Promise.all(Array.from({ length: connections }, loop));
  agent.destroy();
  return { ok, failed, seconds: (performance.now() - began) / 1000, latencyUs };
}

function merge(runs: RunResult[]): RunResult {
  const latencyUs = createHistogram({ lowest: 1, highest: 60_000_000, figures: 3 });
  for (const r of runs) latencyUs.add(r.latencyUs);
  return {
    ok: runs.reduce((s, r) => s + r.ok, 0),
    failed: runs.reduce((s, r) => s + r.failed, 0),
    seconds: runs.reduce((s, r) => s + r.seconds, 0),
    latencyUs,
  };
}

function startApp(): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ["-e", APP_SOURCE], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on (\S+)/.exec(out);
      if (match?.[1]) resolve({ url: match[1], child });
    });
    child.once("exit", (code) => reject(new Error(`the bench app exited with ${code}`)));
  });
}

/** µs per verification of the assertion check alone (jose jwtVerify, binding, replay cache), in this process. */
async function verifyCostUs(mint: (m: string, u: string) => string): Promise<number> {
  const verify = createOutpostVerifier({ issuer: ISSUER, jwks: { keys: [publicJwk(TEST_SIGNING_KEY)] } });
  const tokens = Array.from({ length: 3000 }, () => mint("GET", PATH));
  for (const t of tokens.slice(0, 500)) await verify({ method: "GET", pathAndQuery: PATH, assertion: t });
  const started = performance.now();
  for (const t of tokens.slice(500)) await verify({ method: "GET", pathAndQuery: PATH, assertion: t });
  return ((performance.now() - started) * 1000) / (tokens.length - 500);
}

export const originOverhead: BenchmarkFn = async (ctx: BenchContext) => {
  const seconds = ctx.durationSec ?? DEFAULT_DURATION_SEC;
  const rounds = ctx.rounds ?? DEFAULT_ROUNDS;
  const mint = minter();
  const loadBefore = loadAverage();
  let app: { url: string; child: ChildProcess } | null = null;
  let origin: SpawnedOrigin | null = null;
  const rows: string[][] = [];
  const summary: Record<string, { direct: RunResult; origin: RunResult; originCpuUs: number }> = {};
  try {
    app = await startApp();
    origin = await spawnOrigin(["--upstream", app.url, "--data-dir", ":memory:"], trustEdgeEnv({ issuer: ISSUER }));
    const viaOrigin = () => mint("GET", PATH);
    const check = await runLoad(origin.url, 1, 0.2, viaOrigin);
    if (check.ok === 0 || check.failed > 0) throw new Error(`the origin refused the bench's assertions (${check.failed} failed)`);
    for (const connections of PROFILES) {
      ctx.log(`${connections} connection(s): warm-up ${WARMUP_SEC} s each, then ${rounds} × ${seconds} s per target, interleaved`);
      await runLoad(app.url, connections, WARMUP_SEC, null);
      await runLoad(origin.url, connections, WARMUP_SEC, viaOrigin);
      const direct: RunResult[] = [];
      const through: RunResult[] = [];
      let originCpuMs = 0;
      for (let round = 0; round < rounds; round++) {
        direct.push(await runLoad(app.url, connections, seconds, null));
        const cpuBefore = cpuMs(origin.child.pid);
        through.push(await runLoad(origin.url, connections, seconds, viaOrigin));
        originCpuMs += cpuMs(origin.child.pid) - cpuBefore;
        ctx.log(
          `  round ${round + 1}: direct p50 ${num(direct.at(-1)!.latencyUs.percentile(50) / 1000, 3)} ms, origin p50 ${num(through.at(-1)!.latencyUs.percentile(50) / 1000, 3)} ms`,
        );
      }
      const d = merge(direct);
      const o = merge(through);
      summary[connections] = { direct: d, origin: o, originCpuUs: (originCpuMs * 1000) / o.ok };
      for (const [label, r] of [
        ["App directly", d],
        ["Through the origin", o],
      ] as const) {
        rows.push([
          label,
          String(connections),
          num(r.latencyUs.percentile(50) / 1000, 3),
          num(r.latencyUs.percentile(99) / 1000, 3),
          num(r.latencyUs.mean / 1000, 3),
          num(r.ok / r.seconds, 0),
          String(r.failed),
        ]);
      }
    }
  } finally {
    await origin?.stop();
    app?.child.kill();
  }
  const verifyUs = await verifyCostUs(mint);
  const one = summary[1]!;
  const addedP50 = (one.origin.latencyUs.percentile(50) - one.direct.latencyUs.percentile(50)) / 1000;
  const ten = summary[10]!;
  const machine = machineInfo(ctx.root);
  return [
    "## Origin overhead",
    "",
    `The origin (\`origin/\`, \`--upstream\`) in front of a minimal Node app, against calling that app directly: every request through`,
    "the origin carries a fresh ES256 assertion, verified (signature, claims, binding, replay cache) and stripped before a",
    "streamed forward with the X-Outpost-* identity headers. Keep-alive connections, one request at a time per connection;",
    "assertions are minted outside the timed part. Targets interleaved round by round.",
    "",
    table(["Target", "Connections", "p50 ms", "p99 ms", "mean ms", "req/s", "failed"], rows, "lrrrrrr"),
    "",
    `- **Added p50 (1 connection): ${num(addedP50, 3)} ms** — target < ${TARGET_ADDED_P50_MS} ms: ${addedP50 < TARGET_ADDED_P50_MS ? "met" : "NOT met"}.`,
    `- Added p50 at 10 connections: ${num((ten.origin.latencyUs.percentile(50) - ten.direct.latencyUs.percentile(50)) / 1000, 3)} ms; throughput ${num(ten.origin.ok / ten.origin.seconds / (ten.direct.ok / ten.direct.seconds), 2)}× direct.`,
    `- The assertion check alone: ${num(verifyUs, 1)} µs per request (in-process: jose \`jwtVerify\` with WebCrypto ES256, claim checks, binding, replay cache). Origin CPU per forwarded request: ${num(one.originCpuUs, 0)} µs (1 connection), ${num(ten.originCpuUs, 0)} µs (10).`,
    "",
    `Run: \`${ctx.command}\` on ${new Date().toISOString()}, ${rounds} × ${seconds} s per target and profile. Machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.os}, Node ${machine.node}. Load average before / after: ${loadBefore} → ${loadAverage()}.${ctx.note ? ` Note: ${ctx.note}` : ""}`,
  ].join("\n");
};

// Standalone: `node bench/origin.ts` (bench/run.ts can also list it as `origin`).
if (process.argv[1] && import.meta.filename === process.argv[1]) {
  const { values } = parseArgs({
    options: { duration: { type: "string" }, rounds: { type: "string" }, note: { type: "string" }, "no-write": { type: "boolean", default: false } },
  });
  const root = fileURLToPath(new URL("..", import.meta.url));
  const markdown = await originOverhead({
    root,
    command: `node bench/origin.ts${values.duration ? ` --duration ${values.duration}` : ""}${values.rounds ? ` --rounds ${values.rounds}` : ""}`,
    ...(values.duration ? { durationSec: Number(values.duration) } : {}),
    ...(values.rounds ? { rounds: Number(values.rounds) } : {}),
    ...(values.note ? { note: values.note } : {}),
    log: (m) => console.log(`[bench] ${m}`),
  });
  if (values["no-write"]) console.log(markdown);
  else {
    writeSection(join(root, "BENCHMARKS.md"), "origin", markdown);
    console.log('[bench] wrote section "origin" of BENCHMARKS.md');
  }
  process.exit(0);
}
