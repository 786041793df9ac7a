// Runs the origin from the command line: node origin/main.ts [--port 8788] [--host 127.0.0.1].
import { parseArgs } from "node:util";
import { startOrigin } from "./server.ts";

const { values } = parseArgs({
  options: { port: { type: "string", default: "8788" }, host: { type: "string", default: "127.0.0.1" } },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`outpost origin: --port must be a port number (got ${values.port})`);
  process.exit(2);
}
const origin = await startOrigin({ port, host: values.host });
console.log(`origin listening on ${origin.url}`);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => void origin.close().then(() => process.exit(0)));
}
