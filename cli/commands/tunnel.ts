// outpost tunnel init | check: a cloudflared config.yml that exposes the origin to the edge, and its validation.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { CAC } from "cac";
import { ORIGIN_PORT } from "../../shared/settings/index.ts";
import { intOpt, stringOpt, type Options } from "../lib/args.ts";
import { CliError, EXIT, configError, usageError } from "../lib/errors.ts";
import { out } from "../lib/output.ts";

const DEFAULT_CONFIG = "cloudflared/config.yml";
const DEFAULT_ORIGIN_PORT = ORIGIN_PORT;

/** What the tunnel needs to carry long-lived WebSockets and streams from the edge to the origin. */
const ORIGIN_REQUEST = {
  connectTimeout: "10s",
  tlsTimeout: "10s",
  tcpKeepAlive: "30s",
  keepAliveConnections: 100,
  keepAliveTimeout: "90s",
  noHappyEyeballs: false,
  disableChunkedEncoding: false,
} as const;

const HOSTNAME = /^(?=.{1,253}$)(?:\*\.)?(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$/;
const TUNNEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function registerTunnel(cli: CAC): void {
  cli
    .command("tunnel <action>", "Cloudflare Tunnel: `tunnel init` writes cloudflared's config.yml, `tunnel check` validates one")
    .option("--hostname <host>", "init: the public hostname the tunnel serves (ORIGIN_URL at the edge)")
    .option("--origin-port <port>", `init: the origin's local port (default: ${DEFAULT_ORIGIN_PORT})`)
    .option("--name <tunnel>", "init: the tunnel's name (default: outpost)")
    .option("--out <file>", `init: where to write (default: ./${DEFAULT_CONFIG})`)
    .option("--file <file>", `check: the file to check (default: ./${DEFAULT_CONFIG})`)
    .option("--force", "init: overwrite an existing file")
    .option("--json", "check: print JSON")
    .example("  $ outpost tunnel init --hostname origin.example.com")
    .example("  $ outpost tunnel init --hostname origin.example.com --origin-port 9000 --out ~/.cloudflared/config.yml")
    .example("  $ outpost tunnel check --file cloudflared/config.yml")
    .action((action: string, options: Options) => {
      const a = String(action);
      if (a === "init") return init(options);
      if (a === "check") return check(options);
      throw usageError(`unknown tunnel action ${JSON.stringify(a)}`, "Use `outpost tunnel init` or `outpost tunnel check`.");
    });
}

function renderConfig(hostname: string, port: number, tunnel: string): string {
  const orq = Object.entries(ORIGIN_REQUEST)
    .map(([k, v]) => `      ${k}: ${v}`)
    .join("\n");
  return `# cloudflared configuration for Outpost, written by \`outpost tunnel init\`.
# It exposes the origin on this computer at https://${hostname}, which the edge reaches as ORIGIN_URL.
# Run it with: cloudflared tunnel --config <this file> run ${tunnel}
tunnel: ${tunnel}
# cloudflared looks for the credentials file \`cloudflared tunnel create\` wrote (~/.cloudflared/<tunnel-id>.json);
# set credentials-file here if you keep it elsewhere.
ingress:
  - hostname: ${hostname}
    service: http://127.0.0.1:${port}
    originRequest:
      # Fail fast when the origin is down; keep idle connections (and WebSockets) alive through NATs.
${orq}
  # Anything else is refused.
  - service: http_status:404
`;
}

function init(options: Options): void {
  const hostname = stringOpt(options, "hostname");
  if (!hostname) throw usageError("tunnel init needs --hostname <host>", "e.g. outpost tunnel init --hostname origin.example.com");
  if (!HOSTNAME.test(hostname)) throw usageError(`--hostname must be a DNS name such as origin.example.com (got ${JSON.stringify(hostname)})`);
  const port = intOpt(options, "originPort", 1, 65535, "--origin-port") ?? DEFAULT_ORIGIN_PORT;
  const tunnel = stringOpt(options, "name") ?? "outpost";
  if (!TUNNEL_NAME.test(tunnel)) throw usageError(`--name must be letters, digits, '.', '_' or '-' (got ${JSON.stringify(tunnel)})`);
  const file = resolve(stringOpt(options, "out") ?? DEFAULT_CONFIG);
  if (existsSync(file) && !options.force) throw usageError(`${file} already exists`, "Pass --force to overwrite it.");
  try {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, renderConfig(hostname, port, tunnel));
  } catch (err) {
    throw configError(`cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  out.line(`Wrote ${file}`);
  out.line();
  out.line("Next, with cloudflared installed and `cloudflared tunnel login` done once:");
  out.line(`  cloudflared tunnel create ${tunnel}`);
  out.line(`  cloudflared tunnel route dns ${tunnel} ${hostname}`);
  out.line(`  cloudflared tunnel --config ${file} run ${tunnel}`);
  out.line();
  out.line(`Then set ORIGIN_URL=https://${hostname} for the edge, and start the origin with \`outpost origin --port ${port}\`.`);
}

interface Check {
  name: string;
  ok: boolean;
  detail: string;
  hint?: string;
}

const DURATION = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/;
const SERVICE = /^(https?:\/\/[^\s]+|unix:\S+|unix\+tls:\S+|tcp:\/\/\S+|ssh:\/\/\S+|rdp:\/\/\S+|smb:\/\/\S+|http_status:\d{3}|hello_world|bastion|socks5)$/;

/** Checks a parsed cloudflared config for what Outpost needs; each check has a one-line fix. */
function checkConfig(doc: unknown): Check[] {
  const checks: Check[] = [];
  const add = (name: string, ok: boolean, detail: string, hint?: string) => checks.push({ name, ok, detail, ...(ok || !hint ? {} : { hint }) });
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    add("structure", false, "the file is not a YAML mapping", "Regenerate it with `outpost tunnel init`.");
    return checks;
  }
  const cfg = doc as Record<string, unknown>;
  const tunnel = cfg.tunnel;
  add(
    "tunnel",
    typeof tunnel === "string" && tunnel.length > 0,
    typeof tunnel === "string" ? `tunnel ${tunnel}` : "no `tunnel:` name or id",
    "Add `tunnel: <name or id>` (from `cloudflared tunnel create`).",
  );
  if (cfg["credentials-file"] !== undefined) {
    const cf = String(cfg["credentials-file"]);
    const path = cf.startsWith("~/") ? resolve(process.env.HOME ?? "", cf.slice(2)) : resolve(cf);
    add("credentials-file", existsSync(path), existsSync(path) ? cf : `${cf} does not exist`, "Point it at the JSON file `cloudflared tunnel create` wrote.");
  }
  const ingress = cfg.ingress;
  if (!Array.isArray(ingress) || ingress.length === 0) {
    add("ingress", false, "no `ingress:` rules", "Regenerate it with `outpost tunnel init`.");
    return checks;
  }
  const rules = ingress as Record<string, unknown>[];
  const bad = rules.findIndex((r) => typeof r !== "object" || r === null || typeof r.service !== "string" || !SERVICE.test(r.service));
  add(
    "services",
    bad === -1,
    bad === -1 ? `${rules.length} rules, each with a valid service` : `rule ${bad + 1} has no valid \`service:\``,
    `Each rule needs a service such as http://127.0.0.1:${ORIGIN_PORT}.`,
  );
  const last = rules[rules.length - 1]!;
  const catchAll = typeof last === "object" && last !== null && last.hostname === undefined && last.path === undefined;
  add(
    "catch-all",
    catchAll,
    catchAll ? `last rule: ${String(last.service)}` : "the last rule matches a hostname or path",
    "End the list with `- service: http_status:404`.",
  );
  const early = rules.slice(0, -1).findIndex((r) => typeof r === "object" && r !== null && r.hostname === undefined && r.path === undefined);
  add(
    "rule order",
    early === -1,
    early === -1 ? "no rule hides a later one" : `rule ${early + 1} matches everything, so later rules never apply`,
    "Give it a hostname, or move it to the end.",
  );
  const origin = rules.find(
    (r) =>
      typeof r === "object" &&
      r !== null &&
      typeof r.hostname === "string" &&
      typeof r.service === "string" &&
      /^http:\/\/(127\.0\.0\.1|localhost|\[::1\]):\d+\/?$/.test(r.service),
  );
  add(
    "origin rule",
    origin !== undefined,
    origin ? `${String(origin.hostname)} → ${String(origin.service)}` : "no hostname rule sends traffic to a local origin",
    `Add \`- hostname: <host>\` with \`service: http://127.0.0.1:${ORIGIN_PORT}\`.`,
  );
  if (origin) {
    const host = String(origin.hostname);
    add("hostname", HOSTNAME.test(host), host, "Use a DNS name such as origin.example.com.");
    const orq = { ...(cfg.originRequest as Record<string, unknown> | undefined), ...(origin.originRequest as Record<string, unknown> | undefined) };
    const badDurations = ["connectTimeout", "tlsTimeout", "tcpKeepAlive", "keepAliveTimeout"].filter(
      (k) => orq[k] !== undefined && !DURATION.test(String(orq[k])),
    );
    add(
      "durations",
      badDurations.length === 0,
      badDurations.length === 0 ? "timeouts parse" : `not durations: ${badDurations.join(", ")}`,
      "Use Go durations such as 30s or 1m30s.",
    );
    const missing = ["connectTimeout", "tcpKeepAlive", "keepAliveTimeout"].filter((k) => orq[k] === undefined);
    add(
      "websockets",
      missing.length === 0,
      missing.length === 0 ? "keep-alive and connect timeouts set" : `originRequest lacks ${missing.join(", ")}`,
      "Set them as `outpost tunnel init` does, so WebSockets survive idle periods.",
    );
    if (orq.keepAliveTimeout !== undefined && DURATION.test(String(orq.keepAliveTimeout))) {
      const seconds = durationSeconds(String(orq.keepAliveTimeout));
      add("keepAliveTimeout", seconds >= 30, `${String(orq.keepAliveTimeout)}`, "Use at least 30s so idle connections are not dropped between heartbeats.");
    }
  }
  return checks;
}

function durationSeconds(d: string): number {
  const units: Record<string, number> = { ns: 1e-9, us: 1e-6, µs: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };
  let total = 0;
  for (const m of d.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) total += Number(m[1]) * units[m[2]!]!;
  return total;
}

async function check(options: Options): Promise<void> {
  const file = resolve(stringOpt(options, "file") ?? stringOpt(options, "out") ?? DEFAULT_CONFIG);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw configError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, "Create it with `outpost tunnel init --hostname <host>`.");
  }
  const mod = await import("yaml");
  // Bundled from CommonJS, the module's exports may sit on `default`.
  const { parseDocument } = (mod as unknown as { default?: typeof mod }).default ?? mod;
  const parsed = parseDocument(text, { prettyErrors: false });
  const checks: Check[] =
    parsed.errors.length > 0
      ? [
          {
            name: "yaml",
            ok: false,
            detail: parsed.errors[0]!.message.split("\n")[0]!,
            hint: "Fix the YAML syntax, or regenerate it with `outpost tunnel init`.",
          },
        ]
      : [{ name: "yaml", ok: true, detail: "parses" }, ...checkConfig(parsed.toJS())];
  const ok = checks.every((c) => c.ok);
  if (options.json) out.json({ file, ok, checks });
  else {
    for (const c of checks) {
      const mark = c.ok ? out.paint("green", "ok  ") : out.paint("red", "FAIL");
      out.line(`${mark}  ${c.name.padEnd(16)} ${c.detail}${c.hint ? out.paint("dim", `  → ${c.hint}`) : ""}`);
    }
  }
  if (!ok) throw new CliError(EXIT.FAILURE, `${file} has problems`, { hint: "See the checks above." });
}
