// Child process for benchmarks: runs one Worker in workerd via Miniflare directly (no wrangler dev proxy) until stopped.
import { Miniflare, convertV4MiniflareOptions, type V4MiniflareOptions } from "miniflare";
import { readFileSync } from "node:fs";
import { stripTypeScriptTypes } from "node:module";
import type { WorkerdSpec } from "./workerd.ts";

const spec = JSON.parse(process.env.BENCH_WORKERD_SPEC ?? "null") as WorkerdSpec | null;
if (!spec) {
  console.error("workerd-host: BENCH_WORKERD_SPEC is not set");
  process.exit(2);
}

// A second socket bound straight to the Worker, bypassing Miniflare's entry worker (JavaScript that production
// does not run: request rewriting, pretty errors, encoding checks). Both URLs are reported.
const worker: Record<string, unknown> = { ...spec.worker, unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }] };
if (spec.tsModule) {
  // Small module workers are written in erasable TypeScript; workerd needs plain JavaScript.
  worker.modules = true;
  worker.script = stripTypeScriptTypes(readFileSync(spec.tsModule, "utf8"));
}

let logLines = 0;
const mf = new Miniflare(
  convertV4MiniflareOptions({
    host: "127.0.0.1",
    port: 0,
    // Otherwise Miniflare's entry worker reports every request to Node over its loopback service.
    logRequests: false,
    // console.* lines from the Worker arrive here as structured logs; count them, surface only problems.
    handleStructuredLogs: (log) => {
      if (log.level === "error" || log.level === "warn") process.stderr.write(`[${log.level}] ${log.message}\n`);
      else logLines++;
    },
    ...worker,
  } as V4MiniflareOptions),
);

const url = await mf.ready;
const direct = await mf.unsafeGetDirectURL(String(worker.name ?? ""));
console.log(`workerd listening on ${url.origin} direct ${direct.origin}`);

// The parent stops us by closing our stdin (and if the parent dies, stdin ends too). Miniflare's own exit
// hook handles SIGTERM/SIGINT by disposing workerd and exiting at once, without this summary line.
process.stdin.resume();
process.stdin.once("end", () => {
  console.log(`worker log lines: ${logLines}`);
  void mf.dispose().then(() => process.exit(0));
});
