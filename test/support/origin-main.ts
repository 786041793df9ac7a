// The origin exactly as `node origin/main.ts` runs it, plus the test-only diagnostic routes: what the tests spawn.
import { OriginConfigError, parseOriginArgs } from "../../origin/config.ts";
import { runOrigin } from "../../origin/main.ts";
import { originDiagnostics } from "./origin-diagnostics.ts";

try {
  await runOrigin({ ...parseOriginArgs(process.argv.slice(2)), extensions: [originDiagnostics] });
} catch (err) {
  if (!(err instanceof OriginConfigError) && (err as NodeJS.ErrnoException).code !== "EADDRINUSE") throw err;
  console.error(`outpost origin: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(2);
}
