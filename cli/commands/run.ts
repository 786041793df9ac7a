// outpost run -- <command>: runs a command and keeps it present at the edge; outpost heartbeat <id>: the same loop
// for a session started some other way.
import { spawn } from "node:child_process";
import os from "node:os";
import { basename } from "node:path";
import type { CAC } from "cac";
import { intOpt, stringOpt, type Options } from "../lib/args.ts";
import { CliError, authError, usageError } from "../lib/errors.ts";
import { Heartbeater, isSessionId, type HeartbeatEvent } from "../lib/heartbeat.ts";
import type { HeartbeatEntry } from "../../shared/api-types.ts";
import { out } from "../lib/output.ts";
import { Session } from "../lib/session.ts";

const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

export function registerRun(cli: CAC): void {
  cli
    .command("run [...command]", "Run a command and report it as a live session until it ends")
    .usage("run [--session <id>] [--name <name>] -- <command> [args...]")
    .option("--session <id>", "Session id (default: a new random one)")
    .option("--name <name>", "A name to show on the phone (default: the command's name)")
    .option("--url <url>", "The edge URL")
    .option("--quiet", "Do not print connection notes")
    .example("  $ outpost run -- npm run agent")
    .example("  $ outpost run --name build --session build-42 -- npm run build")
    // `run cmd args` and `run -- cmd args` both work; after `--` nothing is parsed as an outpost option.
    .action((command: string[], options: Options) => run([...command.map(String), ...((options["--"] as string[] | undefined) ?? [])], options));

  cli
    .command("heartbeat <sessionId> [...more]", "Keep sessions started some other way live until Ctrl-C, then remove them")
    .option("--pid <pid>", "The process the session belongs to; the session ends when it exits")
    .option("--name <name>", "A name to show on the phone")
    .option("--status <status>", "working or idle (default: working)")
    .option("--url <url>", "The edge URL")
    .option("--quiet", "Do not print connection notes")
    .example("  $ outpost heartbeat my-agent-1")
    .example("  $ outpost heartbeat agent-a agent-b --status idle   # one batched heartbeat for both")
    .example("  $ outpost heartbeat job-7 --pid 4242   # ends when process 4242 exits")
    .action((first: string, more: string[], options: Options) => heartbeat([String(first), ...more.map(String)], options));
}

function sessionIdOpt(raw: string | undefined): string {
  // Unique, not secret (node:crypto would cost `outpost run` ~2.5 MB of RSS): time, pid and randomness.
  if (raw === undefined) return `ses_${Date.now().toString(36)}${process.pid.toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  if (!isSessionId(raw)) {
    throw usageError(`${JSON.stringify(raw)} is not a valid session id`, "Use 1-128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit.");
  }
  return raw;
}

function signedInSession(options: Options): Session {
  const session = Session.load(stringOpt(options, "url"));
  if (!session.signedIn) throw authError(`not signed in to ${session.edge.url}`, "Run `outpost login`, or set OUTPOST_TOKEN.");
  return session;
}

/** Notes about the edge connection, on stderr, once per change. */
function reporter(quiet: boolean, what: string): (event: HeartbeatEvent) => void {
  return (event) => {
    if (event.type === "rejected") return out.warn(`${event.error.message}; ${what} keeps running without presence`);
    if (quiet) return;
    if (event.type === "down") out.warn(`edge unreachable (${event.reason}); ${what} keeps running, retrying`);
    else if (event.recovered) out.warn("edge reachable again; presence restored");
  };
}

async function run(argv: string[], options: Options): Promise<void> {
  const [file, ...args] = argv;
  if (!file) throw usageError("missing the command to run", "Usage: outpost run [--session <id>] [--name <name>] -- <command> [args...]");
  const id = sessionIdOpt(stringOpt(options, "session"));
  const name = stringOpt(options, "name") ?? basename(file);
  const session = signedInSession(options);
  const hb = new Heartbeater(session.client(), { onEvent: reporter(options.quiet === true, "the command") });

  const child = spawn(file, args, { stdio: "inherit" });
  const forward = (signal: NodeJS.Signals) => () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  const handlers = FORWARDED.map((signal) => [signal, forward(signal)] as const);
  for (const [signal, handler] of handlers) process.on(signal, handler);

  const started = await new Promise<boolean>((resolve) => {
    child.once("spawn", () => resolve(true));
    child.once("error", (err: NodeJS.ErrnoException) => {
      if (child.pid !== undefined) return;
      const code = err.code === "ENOENT" ? 127 : 126;
      out.error(new CliError(code, `cannot start ${JSON.stringify(file)}: ${err.code ?? err.message}`, { hint: "Check the command and your PATH." }));
      process.exitCode = code;
      resolve(false);
    });
  });
  if (!started) {
    for (const [signal, handler] of handlers) process.removeListener(signal, handler);
    return;
  }

  const info: HeartbeatEntry = {
    id,
    pid: child.pid,
    hostname: os.hostname(),
    startedAt: new Date().toISOString(),
    status: "working",
    name,
    meta: { command: basename(file), via: "outpost run" },
  };
  hb.add(info);
  hb.start();

  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const signo = signal ? (os.constants.signals[signal] ?? 0) : 0;
  const exitCode = signal ? 128 + signo : (code ?? 1);
  await hb.stop();
  const reason = signal ? `killed by ${signal}` : exitCode === 0 ? "exited" : `exited with code ${exitCode}`;
  const failure = await hb.end(id, { exitCode, reason });
  hb.close();
  if (failure && options.quiet !== true) out.warn(`could not report the end of the session (${failure.message}); it will expire on its own`);
  for (const [s, handler] of handlers) process.removeListener(s, handler);
  process.exitCode = exitCode;
}

async function heartbeat(ids: string[], options: Options): Promise<void> {
  for (const id of ids) sessionIdOpt(id);
  const pid = intOpt(options, "pid", 1, 2 ** 31 - 1);
  const status = stringOpt(options, "status") ?? "working";
  if (status !== "working" && status !== "idle") throw usageError(`--status must be "working" or "idle" (got ${JSON.stringify(status)})`);
  const name = stringOpt(options, "name");
  const session = signedInSession(options);
  const hb = new Heartbeater(session.client(), { onEvent: reporter(options.quiet === true, "the session") });
  for (const id of ids) {
    hb.add({ id, hostname: os.hostname(), startedAt: new Date().toISOString(), status, ...(pid ? { pid } : {}), ...(name ? { name } : {}) });
  }
  hb.start();
  if (!options.quiet) out.note(`Keeping ${ids.join(", ")} live at ${session.edge.url}; Ctrl-C removes ${ids.length > 1 ? "them" : "it"}.`);

  const why = await new Promise<string>((resolve) => {
    for (const signal of FORWARDED) process.once(signal, () => resolve(`stopped by ${signal}`));
    if (pid) {
      const timer = setInterval(() => {
        try {
          process.kill(pid, 0);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === "ESRCH") {
            clearInterval(timer);
            resolve(`process ${pid} exited`);
          }
        }
      }, 1000);
      timer.unref();
    }
  });
  await hb.stop();
  const failures = (await Promise.all(ids.map((id) => hb.end(id, { reason: why })))).filter((f) => f !== null);
  hb.close();
  if (failures.length > 0) {
    throw new CliError(failures[0]!.exitCode, `could not remove the session at the edge (${failures[0]!.message}); it will expire on its own`, {
      hint: "Check the edge with `outpost doctor`.",
    });
  }
  if (!options.quiet) out.note(`Removed ${ids.join(", ")}.`);
}
