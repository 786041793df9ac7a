// `npm start`: creates .dev.vars, builds the web app, runs the origin and the Worker together; Ctrl-C stops them all.
import { spawn, type ChildProcess } from "node:child_process";
import { constants as fsConstants, existsSync, readFileSync } from "node:fs";
import { appendFile, mkdir, readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { enrollmentLink, readiness } from "./dev-banner.ts";
import { completeDevVars, fillDevVars, localOverrides, parseDevVars, placeholders } from "./dev-vars.ts";
import { EDGE_PORT, LOCAL_HOST, ORIGIN_AUDIENCE, ORIGIN_OPTIONS, ORIGIN_PORT, type OriginKey } from "../shared/settings/index.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const HOST = LOCAL_HOST;
// wrangler dev bundles the Worker and boots workerd; on a cold cache that can take a while.
const START_TIMEOUT_MS = 90_000;
// How long a child gets to exit after SIGTERM before its whole process group is killed.
const STOP_GRACE_MS = 5_000;

// Process groups are POSIX; on Windows each child is signalled alone.
const GROUPS = process.platform !== "win32";

const useColor = process.env.FORCE_COLOR ? process.env.FORCE_COLOR !== "0" : process.stdout.isTTY === true && !("NO_COLOR" in process.env);
const COLORS = { dev: "1", web: "32", origin: "36", edge: "35" } as const;
type Tag = keyof typeof COLORS;

function prefix(tag: Tag): string {
  return paint(COLORS[tag], `[${tag}]`.padEnd(8));
}

function log(message: string): void {
  for (const line of message.split("\n")) process.stdout.write(`${prefix("dev")} ${line}\n`);
}

function paint(code: string, text: string): string {
  return useColor ? `\x1b[${code}m${text}\x1b[0m` : text;
}

function fail(message: string): void {
  for (const line of message.split("\n")) process.stderr.write(`${prefix("dev")} ${paint("31", line)}\n`);
}

function envPort(name: string, fallback: number): number {
  const raw = process.env[name]?.trim();
  if (!raw) return fallback;
  const port = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new StartError(`${name} must be a port number from 1 to 65535 (got "${raw}")`);
  }
  return port;
}

class StartError extends Error {}

/** Where this run keeps its files: the project's usual places, or all of them under OUTPOST_DEV_DIR. */
interface Paths {
  /** Set only when isolated (OUTPOST_DEV_DIR). */
  dir: string | null;
  devVars: string;
  /** Set only when isolated: a web build directory other than web/dist. */
  webOut: string | null;
  /** Set only when isolated: Miniflare state other than .wrangler/state. */
  state: string | null;
}

function resolvePaths(): Paths {
  const raw = process.env.OUTPOST_DEV_DIR?.trim();
  if (!raw) return { dir: null, devVars: join(ROOT, ".dev.vars"), webOut: null, state: null };
  // Absolute, because the children run in the project root whatever our cwd is.
  const dir = resolve(raw);
  return { dir, devVars: join(dir, ".dev.vars"), webOut: join(dir, "web-dist"), state: join(dir, "state") };
}

function show(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith("..") ? rel : path;
}

async function ensureDevVars(path: string): Promise<Record<string, string>> {
  try {
    return await prepareDevVars(path);
  } catch (err) {
    throw new StartError(`could not prepare ${show(path)}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

async function prepareDevVars(path: string): Promise<Record<string, string>> {
  const example = await readFile(join(ROOT, ".dev.vars.example"), "utf8");
  if (!existsSync(path)) {
    const filled = fillDevVars(example);
    // 0600 and exclusive create: the file may hold generated secrets, and a concurrent run must not clobber it.
    const flag = fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_WRONLY;
    await writeFile(path, filled, { mode: 0o600, flag });
    const generated = placeholders(example).map((p) => p.name);
    log(`created ${show(path)} from .dev.vars.example${generated.length ? ` (generated ${generated.join(", ")})` : ""}`);
    return parseDevVars(filled);
  }
  const existing = await readFile(path, "utf8");
  const { text, added, missing } = completeDevVars(example, existing);
  if (added.length > 0) {
    await appendFile(path, text.slice(existing.length));
    log(`added ${added.join(", ")} to ${show(path)} (new in .dev.vars.example, generated locally)`);
  }
  if (missing.length > 0) {
    log(`${show(path)} does not set ${missing.join(", ")} (in .dev.vars.example); the Worker's defaults apply`);
  }
  return parseDevVars(text);
}

function assertPortFree(port: number, setting: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        new StartError(
          err.code === "EADDRINUSE"
            ? `port ${port} on ${HOST} is already in use (another npm start?); stop that process or set ${setting}`
            : `cannot listen on ${HOST}:${port}: ${err.message}`,
        ),
      ),
    );
    server.listen(port, HOST, () => server.close(() => resolve()));
  });
}

function binOf(pkg: string, name: string): string {
  const dir = join(ROOT, "node_modules", pkg);
  const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { bin?: Record<string, string> };
  const bin = manifest.bin?.[name];
  if (!bin) throw new StartError(`${pkg} has no "${name}" executable; run npm install`);
  return join(dir, bin);
}

interface Child {
  tag: Tag;
  proc: ChildProcess;
  exited: Promise<void>;
}

const children: Child[] = [];
let stopping = false;

// Some tools colour their output even into a pipe; without colour on our side, logs stay plain text.
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;

function clean(line: string): string {
  const text = line.replace(/\r$/, "");
  return useColor ? text : text.replace(ANSI, "");
}

/** Pipes a stream line by line to ours, each line under the child's tag. */
function pipeLines(stream: NodeJS.ReadableStream, out: NodeJS.WriteStream, tag: Tag): void {
  let buffered = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split("\n");
    buffered = lines.pop() ?? "";
    for (const line of lines) out.write(`${prefix(tag)} ${clean(line)}\n`);
  });
  stream.on("end", () => {
    if (buffered) out.write(`${prefix(tag)} ${clean(buffered)}\n`);
  });
}

function start(tag: Tag, args: string[], env: NodeJS.ProcessEnv = {}): Child {
  // Its own process group, so the terminal's Ctrl-C reaches only us and we can stop the child together
  // with whatever it spawns (wrangler runs workerd) by signalling the group.
  const proc = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...(useColor ? { FORCE_COLOR: "1" } : {}), ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: GROUPS,
  });
  pipeLines(proc.stdout!, process.stdout, tag);
  pipeLines(proc.stderr!, process.stderr, tag);
  const exited = new Promise<void>((resolve) => {
    proc.once("close", () => resolve());
    proc.once("error", () => resolve());
  });
  const child: Child = { tag, proc, exited };
  children.push(child);
  proc.once("error", (err) => {
    if (!stopping) void shutdown(1, `${tag} could not be started: ${err.message}`);
  });
  proc.once("exit", (code, signal) => {
    if (!stopping && tag !== "web") {
      void shutdown(1, `${tag} exited unexpectedly (${signal ?? `code ${code}`}); stopping the rest`);
    }
  });
  if (proc.pid !== undefined) log(`${tag}: pid ${proc.pid}`);
  return child;
}

function signalGroup(child: Child, signal: NodeJS.Signals | 0): boolean {
  if (child.proc.pid === undefined) return false;
  try {
    process.kill(GROUPS ? -child.proc.pid : child.proc.pid, signal);
    return true;
  } catch {
    return false; // ESRCH: nothing left in the group
  }
}

function groupAlive(child: Child): boolean {
  return signalGroup(child, 0);
}

async function stopChild(child: Child): Promise<void> {
  signalGroup(child, "SIGTERM");
  const deadline = Date.now() + STOP_GRACE_MS;
  // The group outlives its leader while a grandchild (workerd) still runs, so wait for the group, not the pid.
  while (groupAlive(child) && Date.now() < deadline) await sleep(50);
  if (groupAlive(child)) {
    log(`${child.tag} did not stop within ${STOP_GRACE_MS / 1000}s; killing it`);
    signalGroup(child, "SIGKILL");
  }
  await Promise.race([child.exited, sleep(1_000)]);
}

let shuttingDown: Promise<never> | null = null;

function shutdown(code: number, reason?: string): Promise<never> {
  if (shuttingDown) return shuttingDown;
  stopping = true;
  if (reason) (code === 0 ? log : fail)(reason);
  shuttingDown = (async () => {
    await Promise.all(children.map(stopChild));
    if (code === 0) log("stopped");
    process.exit(code);
  })();
  return shuttingDown;
}

// Last resort for a crash in this script itself: never leave a group running behind us.
process.on("exit", () => {
  for (const child of children) signalGroup(child, "SIGKILL");
});

let firstSignalAt = 0;
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    if (firstSignalAt === 0) {
      firstSignalAt = Date.now();
      void shutdown(0, `${signal}: stopping`);
    } else if (Date.now() - firstSignalAt > 1_000) {
      // A second Ctrl-C means "now". One that arrives at once is the same keypress relayed by npm or a shell.
      fail("second signal: killing everything now");
      process.exit(130);
    }
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function run(child: Child, what: string): Promise<void> {
  await child.exited;
  if (stopping) return new Promise(() => {}); // shutdown() exits the process
  const { exitCode, signalCode } = child.proc;
  if (exitCode !== 0) throw new StartError(`${what} failed (${signalCode ?? `exit code ${exitCode}`})`);
}

async function waitForHealth(name: Tag, url: string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await res.body?.cancel();
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(250);
  }
  throw new StartError(`${name} did not answer ${url} within ${START_TIMEOUT_MS / 1000}s; see its log lines above`);
}

/** The origin's flag for one of its options, as shared/settings declares it. */
const flag = (key: OriginKey) => `--${ORIGIN_OPTIONS[key].flag}`;

/**
 * How the origin knows requests came through this edge: the edge's JWKS over loopback (fetched on first use, when the
 * edge is up), PUBLIC_URL as the issuer, ORIGIN_AUDIENCE as the audience. An isolated run keeps origin.db in its dir.
 */
function originTrust(vars: Record<string, string>, edgePort: number, paths: Paths): string[] {
  const args = [flag("edge"), `http://${HOST}:${edgePort}`];
  const publicUrl = vars.PUBLIC_URL?.trim();
  if (publicUrl && URL.canParse(publicUrl)) args.push(flag("issuer"), new URL(publicUrl).origin);
  else args.push(flag("issuer"), `http://localhost:${edgePort}`);
  // The edge's default when .dev.vars leaves it out; never a value from this shell's environment.
  args.push(flag("audience"), vars.ORIGIN_AUDIENCE?.trim() || ORIGIN_AUDIENCE.default);
  if (paths.dir) args.push(flag("dataDir"), join(paths.dir, "origin-data"));
  return args;
}

async function main(): Promise<void> {
  const edgePort = envPort("OUTPOST_EDGE_PORT", EDGE_PORT);
  const originPort = envPort("OUTPOST_ORIGIN_PORT", ORIGIN_PORT);
  if (edgePort === originPort) throw new StartError("OUTPOST_EDGE_PORT and OUTPOST_ORIGIN_PORT must differ");
  const paths = resolvePaths();
  if (paths.dir) await mkdir(paths.dir, { recursive: true });

  const vars = await ensureDevVars(paths.devVars);
  await assertPortFree(originPort, "OUTPOST_ORIGIN_PORT");
  await assertPortFree(edgePort, "OUTPOST_EDGE_PORT");

  const viteArgs = [binOf("vite", "vite"), "build", "web"];
  if (paths.webOut) viteArgs.push("--outDir", paths.webOut, "--emptyOutDir");
  await run(start("web", viteArgs), "building the web app (vite build web)");

  const overrides = localOverrides(vars, {
    edgePort,
    originPort,
    defaultEdgePort: EDGE_PORT,
    defaultOriginPort: ORIGIN_PORT,
  });
  start("origin", ["origin/main.ts", flag("port"), String(originPort), flag("host"), HOST, ...originTrust({ ...vars, ...overrides }, edgePort, paths)]);

  const wranglerArgs = [binOf("wrangler", "wrangler"), "dev", "--local", "--port", String(edgePort), "--ip", HOST];
  wranglerArgs.push("--show-interactive-dev-session=false");
  // wrangler reads .dev.vars only from the project root; anywhere else it must be named as an env file.
  if (paths.devVars !== join(ROOT, ".dev.vars")) wranglerArgs.push("--env-file", paths.devVars);
  if (paths.webOut) wranglerArgs.push("--assets", paths.webOut);
  if (paths.state) wranglerArgs.push("--persist-to", paths.state);
  for (const [name, value] of Object.entries(overrides)) wranglerArgs.push("--var", `${name}:${value}`);
  start("edge", wranglerArgs);

  const edge = `http://localhost:${edgePort}`;
  const origin = `http://${HOST}:${originPort}`;
  await Promise.all([waitForHealth("origin", `${origin}/health`), waitForHealth("edge", `http://${HOST}:${edgePort}/health`)]);
  const ready = await readiness(`http://${HOST}:${edgePort}/ready`, (t) => paint("33", t));
  if (stopping) return;

  const rule = "─".repeat(60);
  const rows: [string, string][] = [
    ["Web app", `${edge}/`],
    ["Edge health", `${edge}/health`],
    ["Readiness", `${edge}/ready   ${ready}`],
    ["Origin", `${origin}/health`],
    ["Settings", show(paths.devVars)],
  ];
  const enroll = await enrollmentLink({ ...vars, ...overrides }, (t) => paint("33", t));
  if (enroll) rows.push(["Sign in", enroll]);
  if (Object.keys(overrides).length > 0) {
    rows.push(["Overridden", `${Object.keys(overrides).join(", ")} (non-default ports)`]);
  }
  process.stdout.write(
    [
      "",
      rule,
      paint("1", "  Outpost is running"),
      ...rows.map(([k, v]) => `    ${k.padEnd(12)} ${v}`),
      "  The edge listens on this machine only; to use it from your phone, deploy it (README).",
      "  Ctrl-C stops everything.",
      rule,
      "",
    ].join("\n") + "\n",
  );
}

main().catch((err: unknown) => {
  if (stopping) return;
  const message = err instanceof StartError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
  void shutdown(1, message);
});
