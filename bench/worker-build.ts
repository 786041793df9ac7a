// Bundles the Outpost Worker (or a bench-only variant of it) with wrangler's own esbuild, and runs it in workerd.
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type * as Esbuild from "esbuild";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { IDENTITY_VARS } from "../test/support/identity.ts";
import { startWorker, type RunningWorker } from "./workerd.ts";

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(BENCH_DIR, "..");
/** The issuer every bench token names; the Worker's PUBLIC_URL. */
export const PUBLIC_URL = "http://localhost:8787";

/** Bench-only modules (plain JavaScript, run only inside workerd). */
export const BENCH_WORKERS = {
  /** requireAuth that checks nothing and sets a fixed owner identity. */
  noAuthMiddleware: join(BENCH_DIR, "workers", "noauth-middleware.js"),
  /** mintAssertion that signs nothing. */
  unsignedAssertion: join(BENCH_DIR, "workers", "unsigned-assertion.js"),
  /** The Outpost Worker plus GET /__bench/hub-stats (the presence hub's stats() RPC). */
  hubStatsEntry: join(BENCH_DIR, "workers", "hub-stats-entry.js"),
  /** Times verifyUserToken, the cached check and mintAssertion inside workerd. */
  authTiming: join(BENCH_DIR, "workers", "auth-timing.js"),
};

export const WORKER_SOURCES = {
  entry: join(ROOT, "worker", "index.ts"),
  middleware: join(ROOT, "worker", "auth", "middleware.ts"),
  assertion: join(ROOT, "worker", "auth", "assertion.ts"),
};

export interface BundleOptions {
  entry: string;
  outfile: string;
  /**
   * Module swaps: real module path → bench module path. Every import of the real module is redirected, except the
   * bench module's own import of it (so a bench module can re-export what it does not replace).
   */
  swap?: Record<string, string>;
}

const wranglerRequire = createRequire(join(ROOT, "node_modules", "wrangler", "package.json"));

/** The esbuild wrangler itself bundles with (a dependency of wrangler, resolved from it). */
function esbuild(): typeof Esbuild {
  return wranglerRequire("esbuild") as typeof Esbuild;
}

export function esbuildVersion(): string {
  return esbuild().version;
}

/**
 * The settings `wrangler deploy` bundles a module Worker with (wrangler 4: target es2024, conditions workerd/worker/
 * browser, NODE_ENV "production", `cloudflare:*` external); every variant of one benchmark goes through this one
 * function, so variants differ only in the swapped modules.
 */
export async function bundleWorker(options: BundleOptions): Promise<string> {
  const swap = new Map(Object.entries(options.swap ?? {}).map(([from, to]) => [resolve(from), resolve(to)]));
  const swapPlugin: Esbuild.Plugin = {
    name: "bench-swap",
    setup(build) {
      build.onResolve({ filter: /^\.\.?\// }, (args) => {
        const target = swap.get(resolve(args.resolveDir, args.path));
        if (!target || resolve(args.importer) === target) return undefined;
        return { path: target };
      });
    },
  };
  await esbuild().build({
    entryPoints: [options.entry],
    outfile: options.outfile,
    bundle: true,
    format: "esm",
    target: "es2024",
    supported: { "import-source": true, using: true },
    conditions: ["workerd", "worker", "browser"],
    external: ["cloudflare:*"],
    define: {
      "process.env.NODE_ENV": '"production"',
      "global.process.env.NODE_ENV": '"production"',
      "globalThis.process.env.NODE_ENV": '"production"',
    },
    plugins: [swapPlugin],
    logLevel: "error",
  });
  return options.outfile;
}

/** wrangler.toml as Miniflare v4 worker options (bindings, Durable Objects, rate limits); wrangler's output kept to errors. */
export function wranglerWorkerOptions(root: string = ROOT): Record<string, unknown> {
  const saved = process.env.WRANGLER_LOG;
  process.env.WRANGLER_LOG = "error";
  try {
    const { workerOptions } = unstable_getMiniflareWorkerOptions(join(root, "wrangler.toml"));
    return JSON.parse(JSON.stringify(workerOptions)) as Record<string, unknown>;
  } finally {
    if (saved === undefined) delete process.env.WRANGLER_LOG;
    else process.env.WRANGLER_LOG = saved;
  }
}

/**
 * Starts a bundled Outpost (or variant) in workerd, configured from wrangler.toml without the static-assets router,
 * with the test stacks' identity settings (test/support/identity.ts) and `vars` on top.
 */
export async function startBundledWorker(name: string, scriptPath: string, vars: Record<string, string>): Promise<RunningWorker> {
  const fromToml = wranglerWorkerOptions();
  const options: Record<string, unknown> = { ...fromToml };
  delete options.assets;
  delete options.modulesRules;
  const bindings = (options.bindings ?? {}) as Record<string, unknown>;
  return startWorker({
    worker: {
      ...options,
      name,
      modules: true,
      scriptPath,
      modulesRoot: dirname(scriptPath),
      bindings: { ...bindings, ...IDENTITY_VARS, PUBLIC_URL, ...vars },
    },
  });
}

/** Which commit the Worker was bundled from, and whether its sources had uncommitted changes (others edit this tree). */
export function sourceState(root: string = ROOT): string {
  try {
    const git = (...args: string[]) => execFileSync("git", args, { cwd: root, encoding: "utf8" }).trim();
    const sha = git("rev-parse", "--short", "HEAD");
    const dirty = git("status", "--porcelain", "--", "worker", "durable-objects", "wrangler.toml").split("\n").filter(Boolean);
    return dirty.length === 0
      ? `commit ${sha}, no uncommitted changes in worker/, durable-objects/ or wrangler.toml`
      : `working tree on commit ${sha} with uncommitted changes in ${dirty.map((line) => line.slice(3)).join(", ")}`;
  } catch {
    return "unknown (no git)";
  }
}
