// outpost doctor: checks this computer's setup against the edge, one line per check with a fix; non-zero if any fails.
import type { CAC } from "cac";
import { stringOpt, type Options } from "../lib/args.ts";
import { credentialsMode, credentialsPath, readCredentials, resolveEdge, type Credentials, type EdgeTarget } from "../lib/config.ts";
import { CliError, EXIT } from "../lib/errors.ts";
import { EdgeClient, EdgeError } from "../lib/http.ts";
import { out, relativeTime } from "../lib/output.ts";
import { Session } from "../lib/session.ts";
import { fetchHealth, fetchReady } from "./presence.ts";
import type { ReadyCheck } from "../../shared/api-types.ts";
import type { Me } from "../../shared/identity.ts";
import { PATHS } from "../../shared/paths.ts";

type Status = "ok" | "warn" | "fail" | "skip";
interface Check {
  name: string;
  status: Status;
  detail: string;
  hint?: string;
}

const MIN_NODE = [22, 12] as const;
const SKEW_WARN_S = 5;
const SKEW_FAIL_S = 60;

export function registerDoctor(cli: CAC): void {
  cli
    .command("doctor", "Check Node, configuration, the edge, your token, clock skew and the origin; one line per check")
    .option("--url <url>", "The edge URL")
    .option("--json", "Print JSON")
    .example("  $ outpost doctor")
    .example("  $ outpost doctor --url https://outpost.example.com --json")
    .action((options: Options) => doctor(options));
}

async function doctor(options: Options): Promise<void> {
  const checks: Check[] = [];
  const add = (name: string, status: Status, detail: string, hint?: string) =>
    checks.push({ name, status, detail, ...(hint && status !== "ok" ? { hint } : {}) });

  const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
  const nodeOk = major > MIN_NODE[0] || (major === MIN_NODE[0] && minor >= MIN_NODE[1]);
  add("node", nodeOk ? "ok" : "fail", `v${process.versions.node}`, `Install Node ${MIN_NODE.join(".")} or newer.`);

  let creds: Credentials | null = null;
  let credsOk = true;
  try {
    creds = readCredentials();
    const mode = credentialsMode();
    if (!creds) add("credentials", "ok", process.env.OUTPOST_TOKEN ? "none stored (OUTPOST_TOKEN is set)" : "none stored");
    else if (mode !== null && (mode & 0o077) !== 0) {
      add("credentials", "warn", `${credentialsPath()} is readable by others (mode ${mode.toString(8)})`, `Run chmod 600 ${credentialsPath()}.`);
    } else add("credentials", "ok", credentialsPath());
  } catch (err) {
    credsOk = false;
    add("credentials", "fail", err instanceof CliError ? err.message : String(err), err instanceof CliError ? err.hint : undefined);
  }

  let edge: EdgeTarget | null = null;
  try {
    edge = resolveEdge(stringOpt(options, "url"), creds);
    if (edge)
      add("config", "ok", `edge ${edge.url} (from ${edge.source === "flag" ? "--url" : edge.source === "env" ? "OUTPOST_URL" : "the credentials file"})`);
    else add("config", "fail", "no edge URL", "Pass --url, set OUTPOST_URL, or run `outpost login --url <edge>`.");
  } catch (err) {
    add("config", "fail", err instanceof CliError ? err.message : String(err), err instanceof CliError ? err.hint : undefined);
  }

  if (edge) await edgeChecks(edge, credsOk ? creds : null, add);
  else for (const name of ["edge", "ready", "token", "clock", "origin"]) add(name, "skip", "no edge to check");

  const failed = checks.some((c) => c.status === "fail");
  if (options.json) out.json({ ok: !failed, checks });
  else {
    const marks: Record<Status, string> = {
      ok: out.paint("green", "ok  "),
      warn: out.paint("yellow", "warn"),
      fail: out.paint("red", "FAIL"),
      skip: out.paint("dim", "skip"),
    };
    for (const c of checks) out.line(`${marks[c.status]}  ${c.name.padEnd(12)} ${c.detail}${c.hint ? out.paint("dim", `  → ${c.hint}`) : ""}`);
  }
  if (failed) {
    const n = checks.filter((c) => c.status === "fail").length;
    throw new CliError(EXIT.FAILURE, `${n} check${n > 1 ? "s" : ""} failed`, { hint: "Fix the lines marked FAIL and run `outpost doctor` again." });
  }
}

async function edgeChecks(edge: EdgeTarget, creds: Credentials | null, add: (name: string, status: Status, detail: string, hint?: string) => void) {
  const anon = new EdgeClient(edge.url);
  let health: Awaited<ReturnType<typeof fetchHealth>>;
  try {
    health = await fetchHealth(anon);
    add("edge", "ok", `${edge.url} answers (v${health.health.version ?? "?"}, ${health.rttMs} ms)`);
  } catch (err) {
    const message = err instanceof CliError ? err.message : String(err);
    add("edge", "fail", message, "Check --url/OUTPOST_URL, your connection, and that the Worker is deployed (`wrangler deploy`) or running (`npm start`).");
    for (const name of ["ready", "token", "clock", "origin"]) add(name, "skip", "the edge is unreachable");
    return;
  }

  let originCheck: ReadyCheck | undefined;
  try {
    const ready = await fetchReady(anon);
    originCheck = ready.checks.origin;
    const failing = Object.entries(ready.checks).filter(([name, c]) => !c.ok && name !== "origin");
    if (failing.length === 0) add("ready", "ok", ready.ready ? "/ready: ready" : "/ready: configuration ok");
    else {
      const detail = failing.map(([name, c]) => `${name}: ${(c.problems ?? ["failed"]).join(", ")}`).join("; ");
      add("ready", "fail", `/ready: ${detail}`, "Fix these settings of the Worker (docs/configuration.md), then redeploy.");
    }
  } catch (err) {
    add("ready", "fail", err instanceof CliError ? err.message : String(err), "Is --url the Outpost edge?");
  }

  const session = new Session(edge, creds, process.env.OUTPOST_TOKEN?.trim() || null);
  if (!session.signedIn) add("token", "fail", `not signed in to ${edge.url}`, "Run `outpost login` (or set OUTPOST_TOKEN).");
  else {
    try {
      const me = await session.client().request<Me>(PATHS.me, { timeoutMs: 5000 });
      const exp = session.expiresAt ?? me.expiresAt * 1000;
      const left = exp - Date.now();
      const source = session.source === "env" ? "OUTPOST_TOKEN" : "stored";
      if (session.canRefresh || left > 5 * 60 * 1000)
        add(
          "token",
          "ok",
          `${source} token valid for ${me.email} (${me.role}), expires ${relativeTime(exp)}${session.canRefresh ? ", refreshed automatically" : ""}`,
        );
      else add("token", "warn", `${source} token for ${me.email} expires ${relativeTime(exp)}`, "Mint a new OUTPOST_TOKEN soon, or use `outpost login`.");
    } catch (err) {
      const message = err instanceof EdgeError ? `${err.message} (${err.code})` : err instanceof CliError ? err.message : String(err);
      add("token", "fail", message, session.source === "env" ? "OUTPOST_TOKEN is invalid or expired; replace it." : "Run `outpost login` again.");
    }
  }

  if (health.date) {
    const edgeMs = Date.parse(health.date);
    // The Date header has 1 s resolution and was written about half a round trip ago.
    const skew = Math.round((Date.now() - health.rttMs / 2 - edgeMs) / 1000);
    const abs = Math.abs(skew);
    const detail = abs <= 1 ? "in sync with the edge" : `${abs} s ${skew > 0 ? "ahead of" : "behind"} the edge`;
    add("clock", abs > SKEW_FAIL_S ? "fail" : abs > SKEW_WARN_S ? "warn" : "ok", detail, "Turn on network time sync (NTP); token expiry depends on the clock.");
  } else add("clock", "skip", "the edge sent no Date header");

  if (!originCheck) add("origin", "skip", "unknown (no readiness report)");
  else if (originCheck.ok) add("origin", "ok", `reachable through the edge${originCheck.latencyMs !== undefined ? ` (${originCheck.latencyMs} ms)` : ""}`);
  else {
    add(
      "origin",
      "fail",
      `not reachable through the edge: ${(originCheck.problems ?? ["failed"]).join(", ")}`,
      "Start it (`outpost origin`) and the tunnel (`cloudflared tunnel run`), and check ORIGIN_URL at the edge.",
    );
  }
}
