// Child process for benchmarks: the real origin (startOrigin from origin/server.ts) on a free loopback port, until stdin ends.
import { startOrigin } from "../origin/server.ts";
import { originDiagnostics } from "../test/support/origin-diagnostics.ts";

/**
 * The origin refuses requests that do not carry the edge's single-use assertion, which a load generator hitting
 * the origin directly cannot produce. An accept-all `verifier` (the option tests use) lets every target reach the
 * same origin code; origins without that check ignore it. `dataDir` keeps the origin's store in memory.
 */
const identity = { sub: "bench", email: process.env.BENCH_OWNER ?? "owner@example.com", role: "owner" };
const options = {
  port: 0,
  host: "127.0.0.1",
  dataDir: ":memory:",
  verifier: async () => identity,
  // The benchmarks' target, /api/echo/*, is a test-only route.
  extensions: [originDiagnostics],
};
const origin = await startOrigin(options as Parameters<typeof startOrigin>[0]);
console.log(`origin listening on ${origin.url}`);

process.stdin.resume();
process.stdin.once("end", () => void origin.close().then(() => process.exit(0)));
