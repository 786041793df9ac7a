// Runs the origin from the command line: node origin/main.ts [--port <port>] [--edge <url>] [--upstream <url>] … (see --help).
// `outpost origin` calls runOrigin() from the CLI bundle.
import { resolve } from "node:path";
import { OriginConfigError, originSettingsFromFlags, parseOriginArgs, resolveOriginOptions, USAGE, type OriginSettings } from "./config.ts";
import type { OriginExtension } from "./app.ts";
import { startOrigin, type RunningOrigin } from "./server.ts";

export interface RunOriginOptions extends OriginSettings {
  /** Where the "listening on <url>" line goes (default: stdout). */
  log?: (line: string) => void;
  /** Environment to fill unset options from (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** Routes added to the origin (see startOrigin); `outpost origin` adds none. */
  extensions?: readonly OriginExtension[];
}

export { OriginConfigError, originSettingsFromFlags, USAGE as ORIGIN_USAGE };

/**
 * Starts the origin, prints "origin listening on <url>", and closes it on SIGINT/SIGTERM before exiting 0.
 * Options left out come from the environment (OUTPOST_EDGE_URL, OUTPOST_JWKS, ORIGIN_AUDIENCE, OUTPOST_UPSTREAM, …).
 */
export async function runOrigin(options: RunOriginOptions = {}): Promise<RunningOrigin> {
  const { log: logLine, env, extensions, ...settings } = options;
  const log = logLine ?? console.log;
  const resolved = resolveOriginOptions(settings, env ?? process.env);
  const origin = await startOrigin({ ...resolved, ...(extensions ? { extensions } : {}) });
  log(`origin listening on ${origin.url}`);
  const keys = resolved.jwks ? `${resolved.jwks.keys.length} configured key(s)` : resolved.edge ? `${resolved.edge}/.well-known/jwks.json` : null;
  if (keys) {
    log(`  accepts requests signed by the edge (issuer ${resolved.issuer ?? resolved.edge}, audience ${resolved.audience}, keys from ${keys})`);
  } else {
    log("  no --edge or --jwks: every request except /health is refused (401) until the origin knows the edge's keys");
  }
  log(resolved.upstream ? `  forwarding to ${resolved.upstream}` : `  built-in API, data in ${resolved.dataDir}`);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => void origin.close().then(() => process.exit(0)));
  }
  return origin;
}

// Only when this very file is the entry point (not when bundled into the CLI or imported).
const entry = process.argv[1] ? resolve(process.argv[1]) : "";
if (entry === import.meta.filename && /[\\/]origin[\\/]main\.ts$/.test(entry)) {
  const args = process.argv.slice(2);
  if (args.includes("--help") || args.includes("-h")) {
    console.log(USAGE);
    process.exit(0);
  }
  try {
    await runOrigin(parseOriginArgs(args));
  } catch (err) {
    if (!(err instanceof OriginConfigError) && (err as NodeJS.ErrnoException).code !== "EADDRINUSE") throw err;
    console.error(`outpost origin: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  }
}
