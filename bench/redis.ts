// Starts a throwaway redis-server (the Debian package) on a free loopback port for a benchmark, and stops it.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import { join } from "node:path";
import { RespClient } from "./resp.ts";

export interface RunningRedis {
  port: number;
  pid: number | undefined;
  version: string;
  /** The settings it was started with, as redis-server arguments. */
  args: string[];
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function redisServerVersion(): string | null {
  try {
    return /v=(\S+)/.exec(execFileSync("redis-server", ["--version"], { encoding: "utf8" }))?.[1] ?? "unknown";
  } catch {
    return null;
  }
}

/**
 * redis-server with expired-key notifications on (`notify-keyspace-events Ex`), no persistence, and everything else at
 * its defaults (hz 10, so the active expiry cycle runs 10 times a second).
 */
export async function startRedis(): Promise<RunningRedis> {
  const version = redisServerVersion();
  if (version === null) {
    throw new Error("redis-server is not installed; on Debian/Ubuntu: apt-get update && apt-get install -y redis-server");
  }
  const port = await freePort();
  const dir = mkdtempSync(join(os.tmpdir(), "outpost-bench-redis-"));
  const args = [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "no",
    "--notify-keyspace-events",
    "Ex",
    "--dir",
    dir,
    "--daemonize",
    "no",
  ];
  const child = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr.on("data", (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const client = await RespClient.connect(port);
      const pong = await client.command("PING");
      client.close();
      if (pong === "PONG") break;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`redis-server did not start: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    pid: child.pid,
    version,
    args: args.map((a) => (a === dir ? "<temp dir>" : a === "" ? '""' : a)),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const killer = setTimeout(() => child.kill("SIGKILL"), 5_000);
        await exited;
        clearTimeout(killer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
