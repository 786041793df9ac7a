// Proxy overhead benchmark: its settings, targets and labels, and the markdown report rendered from the measurements.
import { OWNER } from "../test/support/identity.ts";
import type { LoadResult } from "./load.ts";
import { machineInfo, num, packageVersion, table, type RunInfo } from "./report.ts";
import { PUBLIC_URL } from "./worker-build.ts";

export const PATH = "/api/echo/bench";
export const PROFILES = [10, 1] as const;
/** Per target and profile: one warm-up, then ROUNDS measured runs, the targets interleaved round by round. */
export const DEFAULT_DURATION_SEC = 3;
export const DEFAULT_ROUNDS = 2;
export const DEFAULT_WARMUP_SEC = 1;

/** Targets from the issue: Outpost at ≥ 0.25× direct throughput (10 connections), < 0.4 ms added median (1 connection). */
const TARGET_THROUGHPUT_RATIO = 0.25;
const TARGET_ADDED_P50_MS = 0.4;

export type TargetKey = "direct" | "noop" | "passthrough" | "outpost" | "outpostEntry";
type ProcessKey = "workerd" | "host" | "origin" | "loadgen";

export interface Target {
  key: TargetKey;
  label: string;
  url: string;
  /** The processes a request to this target passes through (the load generator is always one). */
  pids: Partial<Record<ProcessKey, number | undefined>>;
  /** Requests sent to this target in total (sanity check, warm-ups and measured runs). */
  requests: number;
}

export interface Measured extends LoadResult {
  /** CPU µs per 2xx response, per process on the request path. */
  cpuUs: Partial<Record<ProcessKey, number>>;
  /** Throughput of each measured round. */
  roundsRps: number[];
}

export const LABELS: Record<TargetKey, string> = {
  direct: "Origin directly (Node)",
  noop: "Do-nothing Worker (workerd, no subrequest)",
  passthrough: "Pass-through Worker (workerd, `fetch(ORIGIN_URL + path)`)",
  outpost: "Outpost Worker (workerd, full gateway)",
  outpostEntry: "Outpost Worker via Miniflare's entry worker",
};

const PROCESS_LABELS: Record<ProcessKey, string> = {
  workerd: "workerd",
  host: "Miniflare host (Node)",
  origin: "origin (Node)",
  loadgen: "load generator (Node)",
};

const us = (rps: number) => 1e6 / rps;

export interface RenderInput extends RunInfo {
  targets: Target[];
  results: Map<string, Measured>;
  logLines: Partial<Record<TargetKey, number>>;
  /** Which sources the Outpost Worker was built from. */
  source: string;
  /** Whether the Outpost Worker refused the path without a token. */
  enforced: boolean;
  /** Request header names the origin received through the Outpost Worker. */
  originSaw: string[];
}

export function render(input: RenderInput): string {
  const { ctx, durationSec, warmupSec, rounds, targets, results } = input;
  const get = (key: TargetKey, connections: number): Measured => {
    const r = results.get(`${key}@${connections}`);
    if (!r) throw new Error(`missing result ${key}@${connections}`);
    return r;
  };
  const machine = machineInfo(ctx.root);
  const v = (name: string) => packageVersion(ctx.root, name);
  const totalCpu = (m: Measured) => Object.values(m.cpuUs).reduce((sum, x) => sum + x, 0);
  const signed = (x: number, decimals: number) => (x >= 0 ? "+" : "") + num(x, decimals);

  const resultTable = (connections: number) =>
    table(
      ["Target", "req/s", "req/s per round", "p50 ms", "p99 ms", "× direct req/s", "p50 vs direct", "failed"],
      targets.map((t) => {
        const r = get(t.key, connections);
        const d = get("direct", connections);
        return [
          t.label,
          num(r.rps, 0),
          r.roundsRps.map((x) => num(x, 0)).join(" / "),
          num(r.p50Ms, 3),
          num(r.p99Ms, 3),
          t.key === "direct" ? "1.00×" : `${num(r.rps / d.rps, 2)}×`,
          t.key === "direct" ? "—" : `${signed(r.p50Ms - d.p50Ms, 3)} ms`,
          String(r.failed),
        ];
      }),
      "lrrrrrrr",
    );

  const processes: ProcessKey[] = ["workerd", "host", "origin", "loadgen"];
  const cpuTable = table(
    ["Target", "connections", ...processes.map((p) => PROCESS_LABELS[p]), "total"],
    PROFILES.flatMap((connections) =>
      targets.map((t) => {
        const m = get(t.key, connections);
        return [t.label, String(connections), ...processes.map((p) => (p in m.cpuUs ? num(m.cpuUs[p]!, 0) : "—")), num(totalCpu(m), 0)];
      }),
    ),
    "lrrrrrr",
  );

  const ratio10 = get("outpost", 10).rps / get("direct", 10).rps;
  const added1 = get("outpost", 1).p50Ms - get("direct", 1).p50Ms;
  const throughputMet = ratio10 >= TARGET_THROUGHPUT_RATIO;
  const latencyMet = added1 < TARGET_ADDED_P50_MS;
  const status = (met: boolean) => (met ? "**met**" : "**not met**");
  const pt10 = get("passthrough", 10).rps / get("direct", 10).rps;
  const pt1 = get("passthrough", 1).p50Ms - get("direct", 1).p50Ms;
  const entry10 = get("outpostEntry", 10).rps / get("direct", 10).rps;
  const entry1 = get("outpostEntry", 1).p50Ms - get("direct", 1).p50Ms;
  // Cross-check that shared-machine noise cannot move much: capacity as the inverse of CPU spent per request.
  const cpuRatio = (key: TargetKey) => totalCpu(get("direct", 10)) / totalCpu(get(key, 10));

  const compare = (label: string, a: TargetKey, b: TargetKey, meaning: string) => {
    const a10 = get(a, 10);
    const b10 = get(b, 10);
    return [
      label,
      `${num(a10.rps / b10.rps, 2)}×`,
      signed(us(a10.rps) - us(b10.rps), 0),
      signed(get(a, 1).p50Ms - get(b, 1).p50Ms, 3),
      signed((a10.cpuUs.workerd ?? 0) - (b10.cpuUs.workerd ?? 0), 0),
      signed(totalCpu(a10) - totalCpu(b10), 0),
      meaning,
    ];
  };

  const outpostRequests = targets.filter((t) => t.key === "outpost" || t.key === "outpostEntry").reduce((sum, t) => sum + t.requests, 0);
  const outpostLines = input.logLines.outpost;
  const logNote =
    outpostLines !== undefined && Number.isFinite(outpostLines) && outpostRequests > 0
      ? `The Outpost Worker wrote ${outpostLines} console log lines for ${outpostRequests} requests ` +
        `(${num(outpostLines / outpostRequests, 2)} per request); the other Workers wrote none. Under Miniflare each line ` +
        "goes to workerd's stdout and is parsed by the Miniflare host process, which is part of the cost measured here."
      : "";

  return `## Proxy overhead

**Command:** \`${ctx.command}\`  
**Date:** ${input.startedAt.toISOString()}  
**Result:** throughput target ${status(throughputMet)} (${num(ratio10, 2)}× direct at 10 connections, target ≥ ${TARGET_THROUGHPUT_RATIO}×);
added-latency target ${status(latencyMet)} (${signed(added1, 3)} ms median at 1 connection, target < ${TARGET_ADDED_P50_MS} ms).

### Machine

- CPU: ${machine.cpuModel}, ${machine.cores} cores available to Node; ${machine.memoryGiB} GiB RAM; ${machine.os}
- Node ${machine.node} (load generator, origin and Miniflare host); ${machine.workerd}; miniflare ${v("miniflare")};
  wrangler ${v("wrangler")} (build only); autocannon ${v("autocannon")}; hono ${v("hono")}
- Load average (1 / 5 / 15 min): ${input.loadBefore} before, ${input.loadAfter} after. The load generator, the origin and
  workerd all share these cores, and other jobs may be using them too: compare rows of one run with each other, not
  with another run, and lean on the CPU-per-request table, which other jobs skew much less.${ctx.note ? `\n- Note: ${ctx.note}` : ""}

### Setup

- Load: autocannon, \`GET ${PATH}\`, keep-alive, no pipelining, over 127.0.0.1; profiles 10 connections and
  1 connection. For each target and profile a ${warmupSec} s warm-up (discarded), then ${rounds} measured rounds of
  ${durationSec} s, the targets interleaved round by round; results merge the rounds. Latency percentiles come from
  autocannon's per-response hrtime, kept at 1 µs resolution (autocannon's own histogram has 1 ms resolution).
  Throughput counts 2xx responses only.
- Origin: the real origin, \`startOrigin()\` from \`origin/server.ts\`, in its own Node process (\`bench/origin-host.ts\`;
  not \`test/support/spawn-origin.ts\`, whose origin refuses any request without the edge's single-use assertion, which
  a load generator cannot produce). It gets an accept-all \`verifier\` and an in-memory store, so every target reaches
  the same origin code: the origin-side check of the edge's assertion is **not** part of these numbers.
- Workers run in workerd through **Miniflare directly**, each in its own child process (\`bench/workerd-host.ts\`):
  \`new Miniflare(convertV4MiniflareOptions({ host: "127.0.0.1", port: 0, logRequests: false, ... }))\`
  (Miniflare ${v("miniflare")} takes v4-style options only through that converter). The load goes to a workerd socket
  bound straight to each Worker (Miniflare's \`unsafeDirectSockets\`, URL from \`mf.unsafeGetDirectURL()\`), so no
  Node process and no Miniflare JavaScript is on the request path, only workerd and the Worker. The Workers' \`fetch()\`
  to the origin leaves workerd directly over reused keep-alive connections. For comparison, the last row sends the
  same load to the same Outpost instance through Miniflare's main socket (the URL \`await mf.ready\` returns), where
  Miniflare's entry worker, JavaScript that production does not run, handles every request first.
  There is no \`wrangler dev\` proxy anywhere. \`test/support/stack.ts\` is **not** used: wrangler's
  \`createTestHarness().listen()\` returns the URL of wrangler's dev ProxyWorker, and the harness sends the Worker's
  outbound \`fetch\` through Node's \`fetch\` (\`outboundService\`).
- Outpost Worker: built from the ${input.source}, as deployed, with \`wrangler deploy --dry-run --outdir <tmp>\`; run
  from the bundle with \`modules: true, scriptPath\` and the rest of
  \`unstable_getMiniflareWorkerOptions("wrangler.toml").workerOptions\` (vars, Durable Objects, rate limits), minus the
  static-assets router (\`${PATH}\` is \`run_worker_first\` and the Worker does not call \`ASSETS\` for it). Vars from
  wrangler.toml, with \`ORIGIN_URL\` = the origin, \`PUBLIC_URL\` = ${PUBLIC_URL}, and the test stacks' identity settings
  (\`IDENTITY_VARS\` from \`test/support/identity.ts\`: a signing key generated per run, ${OWNER} as owner).
- Every request to every target carries the same \`Authorization: Bearer <owner access token>\` (\`mintAccessToken\`
  from \`test/support/identity.ts\`, one token for the whole run). ${
    input.enforced
      ? "The Outpost Worker **refused** the path without it, so every measured request passed its sign-in check " +
        "(with the Worker's per-isolate cache of verified tokens, as in production)."
      : "The Outpost Worker answered the path **without** a token too: sign-in was not enforced on the proxy in this build, so no token was checked."
  }
  Request headers the origin received through Outpost: ${input.originSaw.map((h) => `\`${h}\``).join(", ") || "(none reported)"}${
    input.originSaw.includes("outpost-assertion") ? " (so an assertion was signed for every request)" : ""
  }.
- Do-nothing Worker: \`bench/noop-worker.ts\` (fixed JSON response). Pass-through Worker: \`bench/passthrough-worker.ts\`
  (\`fetch(ORIGIN_URL + path + query)\`, response returned as is). Both are loaded as their type-stripped JavaScript.
${logNote ? `- ${logNote}\n` : ""}
### Throughput and latency, 10 connections

${resultTable(10)}

### Throughput and latency, 1 connection

${resultTable(1)}

### CPU per request (µs)

CPU time (user + system, from \`/proc/<pid>/stat\`) each process on the request path used during the measured run,
divided by the 2xx responses; "—" marks a process not on that target's path.

${cpuTable}

### Against the targets

${table(
  [
    "Metric",
    "Target",
    "Outpost",
    "Status",
    "Pass-through Worker, this run",
    "Outpost via Miniflare's entry worker, this run",
    "Reference: plain verify-and-proxy Worker",
  ],
  [
    [
      "Throughput at 10 connections, × direct",
      `≥ ${TARGET_THROUGHPUT_RATIO}×`,
      `${num(ratio10, 2)}×`,
      throughputMet ? "met" : "not met",
      `${num(pt10, 2)}×`,
      `${num(entry10, 2)}×`,
      "≈ 0.16×",
    ],
    [
      "Added median latency at 1 connection",
      `< ${TARGET_ADDED_P50_MS} ms`,
      `${signed(added1, 3)} ms`,
      latencyMet ? "met" : "not met",
      `${signed(pt1, 3)} ms`,
      `${signed(entry1, 3)} ms`,
      "≈ +0.43 ms",
    ],
    [
      "Cross-check, not the target's definition: CPU per request at 10 connections, direct ÷ target (all processes)",
      `≥ ${TARGET_THROUGHPUT_RATIO}×`,
      `${num(cpuRatio("outpost"), 2)}×`,
      cpuRatio("outpost") >= TARGET_THROUGHPUT_RATIO ? "met" : "not met",
      `${num(cpuRatio("passthrough"), 2)}×`,
      `${num(cpuRatio("outpostEntry"), 2)}×`,
      "—",
    ],
  ],
  "llrlrrr",
)}

### Where the time goes

"µs per request" is 1 / throughput at 10 connections (wall time per request with every process sharing the cores).

${table(
  [
    "Comparison",
    "req/s ratio (10 c)",
    "µs per request (10 c)",
    "p50 ms (1 c)",
    "workerd CPU µs/req (10 c)",
    "total CPU µs/req (10 c)",
    "What the difference contains",
  ],
  [
    compare("Do-nothing Worker vs direct", "noop", "direct", "workerd's own cost of a request, minus the origin's"),
    compare("Pass-through Worker vs direct", "passthrough", "direct", "a workerd hop plus one subrequest: the floor for any Worker proxy"),
    compare("Outpost vs direct", "outpost", "direct", "everything the gateway adds"),
    compare("**Gateway only: Outpost vs do-nothing Worker**", "outpost", "noop", "the subrequest, the origin's work and all gateway code"),
    compare(
      "Gateway code: Outpost vs pass-through Worker",
      "outpost",
      "passthrough",
      "all gateway code: Hono routing, middleware, the log line, header filtering, the origin timeout" +
        (input.enforced ? ", the sign-in check" : "") +
        (input.originSaw.includes("outpost-assertion") ? ", the signed assertion" : ""),
    ),
    compare("Local only: Outpost via Miniflare's entry worker vs direct socket", "outpostEntry", "outpost", "Miniflare's entry worker (not in production)"),
  ],
  "lrrrrrl",
)}
`;
}
