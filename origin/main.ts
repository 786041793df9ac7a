// Runs the origin from the command line: node origin/main.ts [--port 8788] [--host 127.0.0.1].
// `outpost origin` calls runOrigin() from the CLI bundle.
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { startOrigin, type OriginOptions, type RunningOrigin } from "./server.ts";

export interface RunOriginOptions extends OriginOptions {
  /** Where the "listening on <url>" line goes (default: stdout). */
  log?: (line: string) => void;
}

/** Starts the origin, prints "origin listening on <url>", and closes it on SIGINT/SIGTERM before exiting 0. */
export async function runOrigin(options: RunOriginOptions = {}): Promise<RunningOrigin> {
  const origin = await startOrigin({ port: options.port, host: options.host });
  (options.log ?? console.log)(`origin listening on ${origin.url}`);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => void origin.close().then(() => process.exit(0)));
  }
  return origin;
}

// Only when this very file is the entry point (not when bundled into the CLI or imported).
const entry = process.argv[1] ? resolve(process.argv[1]) : "";
if (entry === import.meta.filename && /[\\/]origin[\\/]main\.ts$/.test(entry)) {
  const { values } = parseArgs({
    options: { port: { type: "string", default: "8788" }, host: { type: "string", default: "127.0.0.1" } },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`outpost origin: --port must be a port number (got ${values.port})`);
    process.exit(2);
  }
  await runOrigin({ port, host: values.host });
}
