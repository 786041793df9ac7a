// Runs the built CLI as a real child process: its own XDG_CONFIG_HOME and HOME, no inherited OUTPOST_* settings.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildCli } from "../../../cli/build.ts";
import type { Stack } from "../../support/stack.ts";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
let built: Promise<string> | null = null;

/** Builds the CLI once per test worker, inside the project (so its external packages resolve), and returns the entry. */
export function cliEntry(): Promise<string> {
  built ??= buildCli(join(ROOT, "test-output", "cli-build", `${process.pid}`));
  return built;
}

export function tempDir(prefix = "outpost-cli-"): string {
  return mkdtempSync(join(os.tmpdir(), prefix));
}

export interface CliOptions {
  /** Extra environment (OUTPOST_URL, OUTPOST_TOKEN…); XDG_CONFIG_HOME defaults to a fresh temp dir. */
  env?: Record<string, string>;
  xdg?: string;
  cwd?: string;
  timeoutMs?: number;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function cliEnv(options: CliOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("OUTPOST_") && k !== "NO_COLOR" && k !== "FORCE_COLOR") env[k] = v;
  const xdg = options.xdg ?? tempDir();
  return { ...env, HOME: xdg, XDG_CONFIG_HOME: xdg, ...options.env };
}

export interface RunningCli {
  child: ChildProcess;
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves with the first match of `pattern` in stdout (or stderr). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  done: Promise<CliResult>;
}

export async function startCli(args: string[], options: CliOptions = {}): Promise<RunningCli> {
  const entry = await cliEntry();
  const child = spawn(process.execPath, [entry, ...args], {
    cwd: options.cwd ?? ROOT,
    env: cliEnv(options),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  const listeners = new Set<() => void>();
  child.stdout!.on("data", (c: Buffer) => {
    stdout += c.toString();
    for (const l of listeners) l();
  });
  child.stderr!.on("data", (c: Buffer) => {
    stderr += c.toString();
    for (const l of listeners) l();
  });
  const done = new Promise<CliResult>((resolve) => {
    child.once("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
  void done.then(() => clearTimeout(timer));
  return {
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    waitFor(pattern, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = pattern.exec(stdout) ?? pattern.exec(stderr);
          if (m) {
            listeners.delete(check);
            clearTimeout(t);
            resolve(m);
          }
        };
        const t = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`no ${pattern} within ${timeoutMs} ms; stdout: ${stdout}; stderr: ${stderr}`));
        }, timeoutMs);
        listeners.add(check);
        check();
        void done.then(() => {
          check();
          if (listeners.has(check)) {
            listeners.delete(check);
            clearTimeout(t);
            reject(new Error(`exited before ${pattern}; stdout: ${stdout}; stderr: ${stderr}`));
          }
        });
      });
    },
    done,
  };
}

export async function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return (await startCli(args, options)).done;
}

/** The error line contract: stderr is exactly one line, "outpost: error: …". */
export function oneLineError(result: CliResult): string {
  const lines = result.stderr.trimEnd().split("\n");
  if (lines.length !== 1 || !lines[0]!.startsWith("outpost: error: ")) {
    throw new Error(`expected one error line, got: ${JSON.stringify(result.stderr)}`);
  }
  return lines[0]!;
}

/** Approves (or denies) a pending CLI login exactly as the phone page does: lookup, then decide, same-site Origin. */
export async function decideLogin(stack: Stack, userCode: string, decision: "approve" | "deny", email = "owner@example.com"): Promise<void> {
  const token = await stack.mintToken(email);
  const headers = { authorization: `Bearer ${token}`, origin: stack.edgeUrl, "content-type": "application/json" };
  const lookup = await fetch(`${stack.edgeUrl}/auth/device/lookup`, { method: "POST", headers, body: JSON.stringify({ user_code: userCode }) });
  if (!lookup.ok) throw new Error(`lookup ${lookup.status}: ${await lookup.text()}`);
  await lookup.body?.cancel();
  const res = await fetch(`${stack.edgeUrl}/auth/device/approve`, { method: "POST", headers, body: JSON.stringify({ user_code: userCode, decision }) });
  if (!res.ok) throw new Error(`approve ${res.status}: ${await res.text()}`);
  await res.body?.cancel();
}

/**
 * A loopback TCP forwarder with a fixed port, so the edge behind it can be stopped and started on another port.
 * `inspect` sees every chunk the client sends (with a way to drop that connection), for tests that record traffic.
 */
export async function tcpForwarder(
  targetUrl: string,
  inspect?: (chunk: Buffer, drop: () => void) => void,
): Promise<{ url: string; retarget(url: string): void; cut(): void; close(): Promise<void> }> {
  let target = new URL(targetUrl);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    if (inspect) client.on("data", (chunk: Buffer) => inspect(chunk, drop));
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    retarget(url) {
      target = new URL(url);
      for (const s of sockets) s.destroy();
    },
    cut() {
      for (const s of sockets) s.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A loopback port nothing listens on. */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export async function waitUntil<T>(fn: () => Promise<T | null | undefined | false>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}
