// Benchmark runner: `npm run bench` runs every benchmark, `npm run bench -- proxy` only the named ones; results go to BENCHMARKS.md.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { writeSection } from "./report.ts";

export interface BenchContext {
  /** The repository root. */
  root: string;
  /** The command line that produced this run, as a reader would retype it. */
  command: string;
  /** Seconds of measured load per run, when overridden on the command line. */
  durationSec?: number;
  /** Measured runs per case, when overridden on the command line. */
  rounds?: number;
  /** Seconds of discarded warm-up load per run, when overridden on the command line. */
  warmupSec?: number;
  /** Free text the operator wants recorded with the results (e.g. what else was running). */
  note?: string;
  log(message: string): void;
}

/** A benchmark renders its own markdown section (including its "##" heading). */
export type BenchmarkFn = (ctx: BenchContext) => Promise<string>;

interface Entry {
  title: string;
  load(): Promise<BenchmarkFn>;
}

// Add a benchmark: a module exporting a BenchmarkFn, and one line here. Modules load only when selected.
const BENCHMARKS: Record<string, Entry> = {
  proxy: { title: "Proxy overhead", load: async () => (await import("./proxy.ts")).proxyOverhead },
  "cli-idle": { title: "CLI idle cost", load: async () => (await import("./cli-idle.ts")).cliIdle },
  auth: { title: "Identity cost", load: async () => (await import("./auth.ts")).authBench },
  presence: { title: "Presence hub vs Node + Redis", load: async () => (await import("./presence.ts")).presenceBench },
  "origin-link": { title: "Origin link: sleep and wake at the phone", load: async () => (await import("./origin-link.ts")).originLinkBench },
};

const ROOT = fileURLToPath(new URL("..", import.meta.url));

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    duration: { type: "string" },
    rounds: { type: "string" },
    warmup: { type: "string" },
    note: { type: "string" },
    out: { type: "string", default: "BENCHMARKS.md" },
    "no-write": { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});

const usage = `Usage: npm run bench -- [${Object.keys(BENCHMARKS).join("|")} ...] [--duration S] [--rounds N] [--warmup S] [--note TEXT] [--out FILE] [--no-write]
With no names, every benchmark runs. Each one rewrites its own section of --out (default BENCHMARKS.md).`;

if (values.help) {
  console.log(usage);
  process.exit(0);
}
const unknown = positionals.filter((name) => !(name in BENCHMARKS));
if (unknown.length > 0) {
  console.error(`Unknown benchmark(s): ${unknown.join(", ")}\n${usage}`);
  process.exit(2);
}
// Whole seconds only: autocannon stops on its 1 s tick, so 3.5 s would silently run for 4 s.
const seconds = (name: string, raw: string | undefined): number | undefined => {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 60) {
    console.error(`--${name} must be a whole number of seconds from 1 to 60 (got ${raw})`);
    process.exit(2);
  }
  return n;
};

const count = (name: string, raw: string | undefined): number | undefined => {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 20) {
    console.error(`--${name} must be a whole number from 1 to 20 (got ${raw})`);
    process.exit(2);
  }
  return n;
};

const args = process.argv.slice(2);
const command =
  process.env.npm_lifecycle_event === "bench"
    ? `npm run bench${args.length > 0 ? ` -- ${args.join(" ")}` : ""}`
    : `node bench/run.ts${args.length > 0 ? ` ${args.join(" ")}` : ""}`;
const ctx: BenchContext = {
  root: ROOT,
  command,
  durationSec: seconds("duration", values.duration),
  rounds: count("rounds", values.rounds),
  warmupSec: seconds("warmup", values.warmup),
  note: values.note,
  log: (message) => console.log(`[bench] ${message}`),
};

const selected = positionals.length > 0 ? [...new Set(positionals)] : Object.keys(BENCHMARKS);
const outFile = join(ROOT, values.out);
let failed = false;
for (const id of selected) {
  const entry = BENCHMARKS[id]!;
  ctx.log(`${entry.title} (${id})`);
  try {
    const markdown = await (await entry.load())(ctx);
    if (values["no-write"]) console.log(markdown);
    else {
      writeSection(outFile, id, markdown);
      ctx.log(`wrote section "${id}" of ${values.out}`);
    }
  } catch (err) {
    failed = true;
    console.error(`[bench] ${id} failed:`, err);
  }
}
// Every benchmark stops its own processes; exit explicitly so a stray handle cannot keep the run alive.
process.exit(failed ? 1 : 0);
