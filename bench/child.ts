// Runs a bench server script as a child Node process: waits for its "listening on" line, stops it by closing its stdin.
import { spawn } from "node:child_process";

export interface BenchChild {
  pid: number | undefined;
  /** The URLs on the child's "… listening on <url> [<name> <url> …]" line, in order. */
  urls: string[];
  /** Everything the child wrote so far (stdout and stderr). */
  output(): string;
  /** Closes the child's stdin (its cue to shut down cleanly), then escalates to signals if it lingers. */
  stop(): Promise<void>;
}

/**
 * Starts `node <script>` with `env` added, and resolves once it prints a line containing
 * "listening on http://…". Each bench host exits when its stdin ends, so a crashed parent takes its
 * children (and their grandchildren, such as workerd) down with it.
 */
export async function startChild(script: string, env: Record<string, string>, timeoutMs = 30_000): Promise<BenchChild> {
  const child = spawn(process.execPath, [script], {
    env: { ...process.env, ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (out += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const urls = await new Promise<string[]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start: ${out}`)), timeoutMs);
    const onData = () => {
      const line = /listening on (http:\/\/[^\n]+)\n/.exec(out)?.[1];
      if (line) {
        clearTimeout(timer);
        child.stdout.off("data", onData);
        resolve(line.split(/\s+/).filter((word) => word.startsWith("http://")));
      }
    };
    child.stdout.on("data", onData);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${child.exitCode}: ${out}`));
    });
  });
  return {
    pid: child.pid,
    urls,
    output: () => out,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.stdin.end();
      const terminator = setTimeout(() => child.kill("SIGTERM"), 10_000);
      const killer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(terminator);
      clearTimeout(killer);
    },
  };
}
