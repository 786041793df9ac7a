// Runs the origin from the command line: node origin/main.ts [--port <port>] [--edge <url>] [--upstream <url>] … (see --help).
// `outpost origin` calls runOrigin() from the CLI bundle.
import { resolve } from "node:path";
import { OriginConfigError, originSettingsFromFlags, parseOriginArgs, resolveOriginOptions, USAGE, type OriginSettings } from "./config.ts";
import type { OriginExtension } from "./app.ts";
import { startOriginLink, type LinkCredential } from "./link.ts";
import { startOrigin, type RunningOrigin } from "./server.ts";

export interface RunOriginOptions extends OriginSettings {
  /** Where the "listening on <url>" line goes (default: stdout). */
  log?: (line: string) => void;
  /** Environment to fill unset options from (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** Routes added to the origin (see startOrigin); `outpost origin` adds none. */
  extensions?: readonly OriginExtension[];
  /**
   * The credential the origin's link to the edge signs in with, given the edge's URL; null: no link (the edge then
   * knows the origin only from its probe). Default: OUTPOST_TOKEN from `env`. `outpost origin` passes the signed-in
   * user's stored session.
   */
  linkCredential?: (edge: string) => LinkCredential | null;
}

/** OUTPOST_TOKEN as the link's credential: used as it is (it cannot be refreshed). */
function envCredential(env: NodeJS.ProcessEnv): LinkCredential | null {
  const token = env.OUTPOST_TOKEN?.trim();
  return token ? { source: "OUTPOST_TOKEN", token: async () => token } : null;
}

export { OriginConfigError, originSettingsFromFlags, USAGE as ORIGIN_USAGE };

/**
 * Starts the origin, prints "origin listening on <url>", and closes it on SIGINT/SIGTERM before exiting 0.
 * Options left out come from the environment (OUTPOST_EDGE_URL, OUTPOST_JWKS, ORIGIN_AUDIENCE, OUTPOST_UPSTREAM, …).
 */
export async function runOrigin(options: RunOriginOptions = {}): Promise<RunningOrigin> {
  const { log: logLine, env, extensions, linkCredential, ...settings } = options;
  const log = logLine ?? console.log;
  const resolved = resolveOriginOptions(settings, env ?? process.env);
  const started = await startOrigin({ ...resolved, ...(extensions ? { extensions } : {}) });
  const credential = resolved.edge ? (linkCredential ?? (() => envCredential(env ?? process.env)))(resolved.edge) : null;
  const link = resolved.edge && credential ? startOriginLink({ edge: resolved.edge, credential, log }) : null;
  // The link says goodbye before the server stops, so phones see the origin offline at once.
  const origin: RunningOrigin = {
    ...started,
    close: async () => {
      await link?.close();
      await started.close();
    },
  };
  log(`origin listening on ${origin.url}`);
  const keys = resolved.jwks ? `${resolved.jwks.keys.length} configured key(s)` : resolved.edge ? `${resolved.edge}/.well-known/jwks.json` : null;
  if (keys) {
    log(`  accepts requests signed by the edge (issuer ${resolved.issuer ?? resolved.edge}, audience ${resolved.audience}, keys from ${keys})`);
  } else {
    log("  no --edge or --jwks: every request except /health is refused (401) until the origin knows the edge's keys");
  }
  log(resolved.upstream ? `  forwarding to ${resolved.upstream}` : `  built-in API, data in ${resolved.dataDir}`);
  if (resolved.edge && !link) log("  no link to the edge (sign in with `outpost login`, or set OUTPOST_TOKEN): phones learn of sleep and wake from its probe");
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
