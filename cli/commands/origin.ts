// outpost origin | enroll-link: run the origin on this computer, and mint an owner enrollment link from the signing key.
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { CAC } from "cac";
import { isEmail, ORIGIN_OPTION_LIST, ORIGIN_OPTIONS, originFlag, originOptionHelp, privateJwk, type SigningJwk } from "../../shared/settings/index.ts";
import { intOpt, stringOpt, type Options } from "../lib/args.ts";
import { parseEdgeUrl, readCredentials } from "../lib/config.ts";
import { configError, usageError } from "../lib/errors.ts";
import { EdgeClient } from "../lib/http.ts";
import { out } from "../lib/output.ts";
import { Session } from "../lib/session.ts";
import type { LinkCredential } from "../../origin/link.ts";

export function registerOrigin(cli: CAC): void {
  const origin = cli.command("origin", "Start the origin server on this computer (what the tunnel exposes to the edge)");
  // --insecure is the CLI's global flag (cli/main.ts): it allows a plain-http --edge here as it does --url elsewhere.
  for (const option of ORIGIN_OPTION_LIST) if (!option.boolean) origin.option(originFlag(option), originOptionHelp(option));
  origin
    .example("  $ outpost origin --edge https://outpost.example.com")
    .example("  $ outpost origin --edge https://outpost.example.com --upstream http://localhost:3000")
    .example("  $ outpost origin --port 9000 --edge https://outpost.example.com --audience my-laptop")
    .action(async (options: Options) => {
      // cac camel-cases flags (--data-dir arrives as dataDir); runOrigin() takes them by flag name, as on its command line.
      const flags = Object.fromEntries(
        ORIGIN_OPTION_LIST.map((o) => {
          const name = o.flag.replace(/-(\w)/g, (_, c: string) => c.toUpperCase());
          return [o.flag, o.boolean ? options[name] === true : stringOpt(options, name, `--${o.flag}`)];
        }),
      );
      const port = flags.port ?? ORIGIN_OPTIONS.port.default;
      const host = flags.host ?? ORIGIN_OPTIONS.host.default;
      const { runOrigin, OriginConfigError, originSettingsFromFlags } = await import("../../origin/main.ts");
      try {
        await runOrigin({ ...originSettingsFromFlags(flags), linkCredential });
      } catch (err) {
        if (err instanceof OriginConfigError) throw usageError(err.message, "See `outpost origin --help`.");
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "EADDRINUSE") throw usageError(`port ${port} on ${host} is already in use`, "Pick another with --port.");
        if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND") throw usageError(`cannot listen on ${host}`, "Use an address of this computer, e.g. 127.0.0.1.");
        throw err;
      }
    });

  cli
    .command("enroll-link", "Mint a single-use enrollment link for a phone or browser, signed with the edge's key")
    .option("--email <email>", "Who the link signs in (must be in OWNER_EMAILS, MEMBER_EMAILS or VIEWER_EMAILS)")
    .option("--url <url>", "The edge's PUBLIC_URL (default: OUTPOST_URL, then PUBLIC_URL from .dev.vars, then the stored edge)")
    .option("--key-file <file>", "The ES256 private JWK (default: OUTPOST_SIGNING_KEY, then .dev.vars)")
    .option("--ttl <seconds>", "How long the link stays valid (default: 3600, at most 86400)")
    .example("  $ outpost enroll-link --email me@example.com")
    .example('  $ OUTPOST_SIGNING_KEY="$(cat key.json)" outpost enroll-link --email me@example.com --url https://outpost.example.com')
    .example("  $ outpost enroll-link --email me@example.com --key-file ./signing-key.jwk.json --url https://outpost.example.com")
    .action((options: Options) => enrollLink(options));
}

/**
 * The origin's link signs in as whoever is signed in to that edge on this computer (OUTPOST_TOKEN first, as for every
 * command), refreshing the stored session as the other commands do; nobody signed in there: no link.
 */
function linkCredential(edge: string): LinkCredential | null {
  let creds: ReturnType<typeof readCredentials> = null;
  try {
    creds = readCredentials();
  } catch (err) {
    out.warn(`no link to the edge: ${err instanceof Error ? err.message : String(err)}`);
  }
  const session = new Session({ url: edge, source: "flag" }, creds, process.env.OUTPOST_TOKEN?.trim() || null);
  if (!session.signedIn) return null;
  const source = session.source === "env" ? "OUTPOST_TOKEN" : `the stored credentials${session.credentials?.email ? ` of ${session.credentials.email}` : ""}`;
  return { source, token: (refresh) => session.accessToken(refresh) };
}

/** The key the edge signs with (OUTPOST_SIGNING_KEY), checked by the same rule the edge applies. */
function parseKey(text: string, where: string): SigningJwk {
  const parsed = privateJwk.parse(text.trim());
  if (!parsed.ok) throw configError(`${where} is not an ES256 (P-256) private JWK with a kid`, "Use the OUTPOST_SIGNING_KEY value the edge has.");
  return parsed.value;
}

/** The project's .dev.vars: in the current directory, else at the root of the checkout this CLI was built in. */
function readDevVars(): { file: string; vars: Record<string, string> } | null {
  const candidates = [resolve(".dev.vars")];
  try {
    candidates.push(join(fileURLToPath(new URL("../..", import.meta.url)), ".dev.vars"));
  } catch {
    // not a file: URL
  }
  for (const file of candidates) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    // Not a static import: node:util's ES namespace loads worker_threads for every command.
    return { file, vars: process.getBuiltinModule("node:util").parseEnv(text) as Record<string, string> };
  }
  return null;
}

async function enrollLink(options: Options): Promise<void> {
  const email = stringOpt(options, "email");
  if (!email) throw usageError("enroll-link needs --email <address>");
  if (!isEmail(email)) throw usageError(`--email must be an email address (got ${JSON.stringify(email)})`);
  const ttl = intOpt(options, "ttl", 60, 86_400);

  const keyFile = stringOpt(options, "keyFile", "--key-file");
  let key: SigningJwk;
  let keySource: string;
  let devVars: ReturnType<typeof readDevVars> = null;
  if (keyFile) {
    let text: string;
    try {
      text = readFileSync(keyFile, "utf8");
    } catch (err) {
      throw configError(`cannot read the key file ${keyFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, "Check the path and its permissions.");
    }
    key = parseKey(text, `the key file ${keyFile}`);
    keySource = keyFile;
  } else if (process.env.OUTPOST_SIGNING_KEY) {
    key = parseKey(process.env.OUTPOST_SIGNING_KEY, "OUTPOST_SIGNING_KEY");
    keySource = "OUTPOST_SIGNING_KEY";
  } else {
    devVars = readDevVars();
    const raw = devVars?.vars.OUTPOST_SIGNING_KEY;
    if (!devVars || !raw) {
      throw configError("no signing key found", "Pass --key-file <jwk.json>, set OUTPOST_SIGNING_KEY, or run it in the project (with .dev.vars).");
    }
    key = parseKey(raw, `OUTPOST_SIGNING_KEY in ${devVars.file}`);
    keySource = devVars.file;
  }

  const flagUrl = stringOpt(options, "url");
  let url: string;
  if (flagUrl) url = parseEdgeUrl(flagUrl, "flag");
  else if (process.env.OUTPOST_URL) url = parseEdgeUrl(process.env.OUTPOST_URL, "env");
  else {
    devVars ??= readDevVars();
    const fromDevVars = devVars?.vars.PUBLIC_URL;
    let stored: string | undefined;
    try {
      stored = readCredentials()?.url;
    } catch {
      stored = undefined;
    }
    const raw = keySource === devVars?.file ? (fromDevVars ?? stored) : (stored ?? fromDevVars);
    if (!raw) throw configError("no edge URL for the link", "Pass --url <PUBLIC_URL of the edge> or set OUTPOST_URL.");
    url = parseEdgeUrl(raw, "flag");
  }

  const { mintEnrollmentLink } = await import("../../shared/enrollment.ts");
  const link = await mintEnrollmentLink({ signingKey: key, publicUrl: url, email, ...(ttl ? { ttlSeconds: ttl } : {}) });
  await warnIfUnknownKey(url, key.kid);
  out.line(link.url);
  out.note(
    out.err(
      "dim",
      `Single use, valid for ${Math.round(link.expiresIn / 60)} min, for ${email.toLowerCase()}; signed with the key from ${keySource}. Open it on the phone.`,
    ),
  );
}

/** A link signed with a key the edge does not publish would be refused there: say so now (best effort, 3 s). */
async function warnIfUnknownKey(url: string, kid: string): Promise<void> {
  try {
    const res = await new EdgeClient(url).fetch("/.well-known/jwks.json", { timeoutMs: 3000 });
    if (!res.ok) return res.cancel();
    const jwks = (await res.json()) as { keys?: { kid?: string }[] };
    if (Array.isArray(jwks.keys) && !jwks.keys.some((k) => k.kid === kid)) {
      out.warn(`the edge at ${url} does not publish key ${kid}; it will refuse this link (wrong key or wrong --url?)`);
    }
  } catch {
    // offline or not deployed yet: the link may still be right
  }
}
