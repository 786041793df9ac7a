// outpost sessions [--watch] | status: who is live at the edge, and whether the edge and the origin are healthy.
import type { CAC } from "cac";
import { sleep, stringOpt, type Options } from "../lib/args.ts";
import { CliError, EXIT, authError } from "../lib/errors.ts";
import { EdgeClient, EdgeError, edgeCall, readJson } from "../lib/http.ts";
import { out, relativeTime, table } from "../lib/output.ts";
import { Session } from "../lib/session.ts";
import { USER_AGENT } from "../lib/version.ts";
import type { HealthReport, OriginState, PresenceList, ReadyReport, SessionView } from "../../shared/api-types.ts";
import type { PresenceEvent, PresenceMessage } from "../../shared/events.ts";
import { PATHS } from "../../shared/paths.ts";

export function registerPresence(cli: CAC): void {
  cli
    .command("sessions", "List live sessions; --watch streams changes as they happen")
    .option("--watch", "Stream live changes over the presence WebSocket (Ctrl-C to stop)")
    .option("--all", "Include sessions that ended recently")
    .option("--json", "Print JSON (with --watch: one JSON message per line)")
    .option("--url <url>", "The edge URL")
    .example("  $ outpost sessions")
    .example("  $ outpost sessions --json | jq '.sessions[].id'")
    .example("  $ outpost sessions --watch")
    .action((options: Options) => (options.watch ? watch(options) : sessions(options)));

  cli
    .command("status", "Edge and origin health, and how many sessions are live")
    .option("--json", "Print JSON")
    .option("--url <url>", "The edge URL")
    .example("  $ outpost status")
    .example("  $ outpost status --json")
    .action((options: Options) => status(options));
}

function signedIn(options: Options): Session {
  const session = Session.load(stringOpt(options, "url"));
  if (!session.signedIn) throw authError(`not signed in to ${session.edge.url}`);
  return session;
}

const isLive = (s: SessionView) => s.alive;

function when(value: string | null): string {
  if (value === null) return "-";
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? relativeTime(ms) : value;
}

function sessionTable(list: SessionView[]): string {
  if (list.length === 0) return "No live sessions.";
  return table(
    ["ID", "NAME", "STATUS", "HOST", "PID", "STARTED", "LAST HEARTBEAT"],
    list.map((s) => [
      s.id,
      s.name ?? "",
      `${s.status}${typeof s.exitCode === "number" && s.exitCode !== 0 ? ` (${s.exitCode})` : ""}`,
      s.hostname ?? "",
      s.pid ? String(s.pid) : "",
      when(s.startedAt),
      when(s.lastHeartbeat),
    ]),
  );
}

function originLine(origin: OriginState | undefined): string {
  if (!origin) return "origin: unknown";
  return `origin: ${origin.online ? out.paint("green", "online") : out.paint("red", "offline")}${origin.lastSeen ? `, last seen ${when(origin.lastSeen)}` : ""}`;
}

async function sessions(options: Options): Promise<void> {
  const session = signedIn(options);
  const body = await edgeCall(() => session.client().request<PresenceList>(PATHS.presence));
  if (options.json) return out.json(body);
  out.line(sessionTable(body.sessions.filter((s) => options.all || isLive(s))));
  out.line(out.paint("dim", originLine(body.origin)));
}

/** One line per event: "session_failed  build-42  exit 3 (exited with code 3)". */
function describeEvent(event: PresenceEvent): string {
  const data = event.data;
  const parts: string[] = [event.type];
  if (event.sessionId) parts.push(event.sessionId);
  if (typeof data.status === "string" && !event.type.endsWith(data.status)) parts.push(data.status);
  if (typeof data.exitCode === "number") parts.push(`exit ${data.exitCode}`);
  if (typeof data.reason === "string") parts.push(`(${data.reason})`);
  return parts.join("  ");
}

/** Streams the presence WebSocket; reconnects with ?after=<seq> so no event is missed or repeated. */
async function watch(options: Options): Promise<void> {
  const session = signedIn(options);
  let after: number | null = null;
  let failures = 0;
  let stopping = false;
  process.once("SIGINT", () => {
    stopping = true;
    process.exit(0);
  });
  for (;;) {
    const token = await session.accessToken();
    const url = new URL(PATHS.presenceSocket, session.edge.url);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    if (after !== null) url.searchParams.set("after", String(after));
    const result = await new Promise<{ opened: boolean; code: number; reason: string }>((resolve) => {
      let opened = false;
      // Node's WebSocket (undici) takes headers, which browsers cannot send; the edge accepts a bearer token here.
      const NodeWebSocket = WebSocket as unknown as new (url: URL, init: { headers: Record<string, string> }) => WebSocket;
      const ws = new NodeWebSocket(url, { headers: { authorization: `Bearer ${token}`, "user-agent": USER_AGENT } });
      ws.addEventListener("open", () => {
        opened = true;
        failures = 0;
      });
      ws.addEventListener("message", (ev) => {
        let msg: PresenceMessage;
        try {
          msg = JSON.parse(String(ev.data)) as PresenceMessage;
        } catch {
          return;
        }
        if (typeof msg.seq === "number") after = msg.seq;
        if (options.json) return process.stdout.write(`${JSON.stringify(msg)}\n`);
        const time = new Date().toTimeString().slice(0, 8);
        if (msg.type === "snapshot") {
          if (msg.reset) out.line(out.paint("dim", "(missed too much while disconnected: fresh snapshot)"));
          out.line(sessionTable(msg.sessions.filter((s) => options.all || isLive(s))));
          out.line(out.paint("dim", `${originLine(msg.origin)} (watching; Ctrl-C to stop)`));
        } else if (msg.type === "event") {
          out.line(`${out.paint("dim", time)}  ${describeEvent(msg.event)}`);
        }
      });
      ws.addEventListener("close", (ev) => resolve({ opened, code: ev.code, reason: ev.reason }));
      ws.addEventListener("error", () => {
        // "close" follows with the details
      });
    });
    if (stopping) return;
    if (!result.opened) {
      // The handshake failed: find out whether it was the token, the edge or the network.
      await classifyHandshakeFailure(session);
      failures++;
    }
    const delay = Math.min(30_000, 500 * 2 ** Math.min(failures, 6)) * (0.5 + Math.random() / 2);
    if (!options.json)
      out.note(out.err("dim", `connection closed${result.reason ? ` (${result.reason})` : ""}; reconnecting in ${Math.round(delay / 1000)} s`));
    await sleep(delay);
  }
}

async function classifyHandshakeFailure(session: Session): Promise<void> {
  try {
    await session.client().request(PATHS.presence, { timeoutMs: 5000 });
  } catch (err) {
    if (err instanceof EdgeError && (err.status === 401 || err.status === 403)) {
      throw authError(`the edge refused the presence stream: ${err.message}`);
    }
    if (err instanceof EdgeError && err.status === 404) throw new CliError(EXIT.EDGE, "this edge has no presence stream (an older version?)");
    if (err instanceof CliError && err.exitCode === EXIT.AUTH) throw err;
    // unreachable or a transient failure: keep retrying
  }
}

export async function fetchHealth(client: EdgeClient): Promise<{ health: HealthReport; date: string | null; rttMs: number }> {
  const started = Date.now();
  const res = await client.fetch(PATHS.health, { auth: false, timeoutMs: 5000 });
  const rttMs = Date.now() - started;
  const date = res.headers.get("date");
  const health = await edgeCall(() => readJson<HealthReport>(res));
  return { health, date, rttMs };
}

/** /ready answers 503 with its usual body when not ready. */
export async function fetchReady(client: EdgeClient): Promise<ReadyReport> {
  const res = await client.fetch(PATHS.ready, { auth: false, timeoutMs: 10_000 });
  const body = (await res.json().catch(() => null)) as ReadyReport | null;
  if (!body || typeof body.ready !== "boolean") throw new CliError(EXIT.EDGE, `/ready answered ${res.status} without a readiness report`);
  return body;
}

async function status(options: Options): Promise<void> {
  const session = Session.load(stringOpt(options, "url"));
  const anon = new EdgeClient(session.edge.url);
  const { health, rttMs } = await fetchHealth(anon);
  const ready = await fetchReady(anon);
  let presence: PresenceList | null = null;
  let presenceError: string | null = null;
  if (session.signedIn) {
    try {
      presence = await session.client().request<PresenceList>(PATHS.presence);
    } catch (err) {
      presenceError = err instanceof Error ? err.message : String(err);
    }
  } else presenceError = "not signed in";
  if (options.json) {
    return out.json({ edge: { url: session.edge.url, rttMs, ...health }, ready, presence, ...(presenceError ? { presenceError } : {}) });
  }
  const mark = (ok: boolean) => (ok ? out.paint("green", "ok") : out.paint("red", "FAIL"));
  const origin = ready.checks.origin;
  out.line(`edge      ${mark(health.status === "ok")}  ${session.edge.url} (v${health.version ?? "?"}, up ${health.uptime ?? "?"} s, ${rttMs} ms)`);
  out.line(`ready     ${mark(ready.ready)}${ready.ready ? "" : `  ${problems(ready)}`}`);
  out.line(
    `origin    ${mark(origin?.ok === true)}${origin?.latencyMs !== undefined ? `  ${origin.latencyMs} ms via the edge` : ""}${origin?.problems ? `  ${origin.problems.join("; ")}` : ""}`,
  );
  if (presence) {
    out.line(`presence  ${presence.origin ? originLine(presence.origin) : ""}`);
    out.line(`sessions  ${presence.sessions.filter(isLive).length} live`);
  } else out.line(`sessions  ${out.paint("dim", `unknown (${presenceError})`)}`);
}

function problems(ready: ReadyReport): string {
  return Object.entries(ready.checks)
    .filter(([, c]) => !c.ok)
    .map(([name, c]) => `${name}: ${(c.problems ?? ["failed"]).join(", ")}`)
    .join("; ");
}
