// Starts a Worker in workerd (Miniflare directly, in a child process) on free loopback ports and waits until it listens.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { startChild } from "./child.ts";
import { childPids } from "./cpu.ts";

export interface WorkerdSpec {
  /** Miniflare v4-style worker options (JSON only), converted with convertV4MiniflareOptions in the host. */
  worker: Record<string, unknown>;
  /** A module worker written in erasable TypeScript, loaded as its stripped JavaScript. */
  tsModule?: string;
}

export interface RunningWorker {
  /** workerd's main socket, e.g. http://127.0.0.1:41919: requests pass Miniflare's entry worker, then the Worker. */
  entryUrl: string;
  /** A workerd socket bound directly to the Worker (Miniflare's unsafeDirectSockets): no entry worker. */
  directUrl: string;
  /** The Node process hosting Miniflare. */
  hostPid: number | undefined;
  /** The workerd process itself (Linux only; undefined when it cannot be found). */
  workerdPid: number | undefined;
  /** Stops the Worker; resolves with the number of console log lines the Worker wrote. */
  stop(): Promise<number>;
}

const HOST = fileURLToPath(new URL("./workerd-host.ts", import.meta.url));

/**
 * Miniflare runs in its own Node process so that its per-request Node-side work (parsing the
 * Worker's structured log lines) does not compete with the load generator's event loop.
 */
export async function startWorker(spec: WorkerdSpec): Promise<RunningWorker> {
  const child = await startChild(HOST, { BENCH_WORKERD_SPEC: JSON.stringify(spec) });
  const [entryUrl, directUrl] = child.urls;
  if (!entryUrl || !directUrl) throw new Error(`workerd host reported no direct socket: ${child.output()}`);
  const workerdPid = child.pid === undefined ? undefined : childPids(child.pid).find((pid) => commandOf(pid) === "workerd");
  return {
    entryUrl,
    directUrl,
    hostPid: child.pid,
    workerdPid,
    async stop() {
      await child.stop();
      return Number(/worker log lines: (\d+)/.exec(child.output())?.[1] ?? Number.NaN);
    },
  };
}

function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}
