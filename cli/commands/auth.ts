// outpost login | logout | whoami: the device-code login (or Supabase email sign-in) and the stored session.
import os from "node:os";
import type { CAC } from "cac";
import { intOpt, sleep, stringOpt, type Options } from "../lib/args.ts";
import { credentialsPath, deleteCredentials, readCredentials, requireEdge, writeCredentials, type Credentials } from "../lib/config.ts";
import { CliError, EXIT, authError, configError, usageError } from "../lib/errors.ts";
import { EdgeClient, EdgeError, edgeCall, unreachable } from "../lib/http.ts";
import { out, relativeTime, spinner } from "../lib/output.ts";
import { request } from "../lib/request.ts";
import { Session, credentialsFromTokens } from "../lib/session.ts";
import { USER_AGENT } from "../lib/version.ts";
import { CLI_CLIENT_ID, DEVICE_CODE_GRANT, type DeviceCodeResponse, type Me, type OpenIdConfiguration, type TokenResponse } from "../../shared/identity.ts";
import { HOSTNAME_MAX } from "../../shared/limits.ts";
import { PATHS } from "../../shared/paths.ts";

export function registerAuth(cli: CAC): void {
  cli
    .command("login", "Sign in to an edge: approve the login on your phone (or --email for Supabase)")
    .option("--url <url>", "The edge URL (default: OUTPOST_URL, then the stored one)")
    .option("--email <address>", "Sign in with Supabase email and password instead (edges with AUTH_PROVIDER=supabase)")
    .option("--anon-key <key>", "Supabase anon key for --email (default: OUTPOST_SUPABASE_ANON_KEY)")
    .option("--no-qr", "Do not print the QR code")
    .option("--timeout <seconds>", "Give up waiting for approval after this many seconds (default: when the code expires)")
    .example("  $ outpost login --url https://outpost.example.com")
    .example("  $ outpost login --email me@example.com   # password from the prompt or OUTPOST_PASSWORD")
    .action((options: Options) => login(options));

  cli
    .command("logout", "Revoke this computer's session at the edge and delete the stored credentials")
    .option("--force", "Delete the local credentials even if the edge cannot be reached")
    .example("  $ outpost logout")
    .example("  $ outpost logout --force   # offline: forget the credentials locally")
    .action((options: Options) => logout(options));

  cli
    .command("whoami", "Show who you are signed in as")
    .option("--url <url>", "The edge URL")
    .option("--json", "Print JSON")
    .example("  $ outpost whoami")
    .example("  $ outpost whoami --json | jq -r .email")
    .action((options: Options) => whoami(options));
}

async function login(options: Options): Promise<void> {
  const existing = safeReadCredentials();
  const edge = requireEdge(stringOpt(options, "url"), existing);
  const email = stringOpt(options, "email");
  const creds = email ? await loginSupabase(edge.url, email, options) : await loginDevice(edge.url, options);
  // Device-flow tokens are stored at once: the edge has already created the device and checked the access list.
  // A Supabase session is stored only once the edge has accepted it.
  if (!email) writeCredentials(creds);
  const check = new EdgeClient(edge.url, { accessToken: async () => creds.access_token, canRefresh: false });
  const me = await edgeCall(() => check.request<Me>(PATHS.me));
  writeCredentials({ ...creds, ...(me.email ? { email: me.email } : {}) });
  out.line(`${out.paint("green", "Signed in")} to ${edge.url} as ${out.paint("bold", me.email)} (${me.role}).`);
  out.line(out.paint("dim", `Credentials saved to ${credentialsPath()}`));
}

/** The stored credentials, or null when they are missing or unusable (login replaces them anyway). */
function safeReadCredentials(): Credentials | null {
  try {
    return readCredentials();
  } catch {
    return null;
  }
}

async function loginDevice(edgeUrl: string, options: Options): Promise<Credentials> {
  const client = new EdgeClient(edgeUrl);
  const timeout = intOpt(options, "timeout", 1, 3600);
  const code = await edgeCall(() =>
    client.request<DeviceCodeResponse>(PATHS.deviceCode, {
      auth: false,
      form: {
        client_id: CLI_CLIENT_ID,
        client_name: "outpost-cli",
        hostname: os.hostname().slice(0, HOSTNAME_MAX),
        platform: process.platform,
        arch: process.arch,
      },
    }),
  );
  if (!code?.device_code || !code.user_code) throw new CliError(EXIT.EDGE, "the edge answered the login request without a code");
  out.line(`To sign in, open this page on your phone and approve the code:`);
  out.line();
  out.line(`  ${out.paint("cyan", code.verification_uri)}`);
  out.line(`  code: ${out.paint("bold", code.user_code)}`);
  out.line();
  if (options.qr !== false && out.tty && code.verification_uri_complete) {
    out.line("Or scan this QR code:");
    out.line(await qrText(code.verification_uri_complete));
  }
  // RFC 8628 §3.5: poll every `interval` seconds; slow_down adds 5 s for good (the edge names the new interval in
  // `interval`). Retry-After, when the edge sends one, can only make the next wait longer.
  let interval = Math.max(1, code.interval ?? 5);
  let wait = interval;
  const expiresAt = Date.now() + code.expires_in * 1000;
  const deadline = timeout ? Math.min(expiresAt, Date.now() + timeout * 1000) : expiresAt;
  const spin = spinner("Waiting for approval on your phone…");
  const onSigint = () => {
    spin.stop("Login cancelled.");
    process.exit(EXIT.INTERRUPTED);
  };
  process.once("SIGINT", onSigint);
  try {
    for (;;) {
      await sleep(Math.max(0, Math.min(wait * 1000, deadline - Date.now())));
      if (Date.now() >= deadline) {
        throw Date.now() >= expiresAt
          ? authError("the login code expired before it was approved", "Run `outpost login` again.", "expired_token")
          : authError(`no approval within ${timeout} s`, "Run `outpost login` again.");
      }
      wait = interval;
      try {
        const tokens = await client.request<TokenResponse>(PATHS.deviceToken, {
          auth: false,
          form: { grant_type: DEVICE_CODE_GRANT, device_code: code.device_code, client_id: CLI_CLIENT_ID },
        });
        spin.stop(`${out.err("green", "✓")} Approved.`);
        return credentialsFromTokens(edgeUrl, tokens);
      } catch (err) {
        if (err instanceof CliError && err.exitCode === EXIT.UNREACHABLE) {
          spin.text("Waiting for approval… (the edge is not answering; retrying)");
          continue;
        }
        if (!(err instanceof EdgeError)) throw err;
        switch (err.code) {
          case "authorization_pending":
            interval = err.interval ?? interval;
            wait = Math.max(interval, err.retryAfter ?? 0);
            spin.text(`Waiting for approval on your phone… (code ${code.user_code}, expires ${relativeTime(expiresAt)})`);
            continue;
          case "slow_down":
            // Also the edge's answer to polling past its rate limit (429, with a longer Retry-After).
            interval = err.interval ?? interval + 5;
            wait = Math.max(interval, err.retryAfter ?? 0);
            continue;
          case "access_denied":
            throw authError("the login was denied on the phone", "Run `outpost login` again if that was a mistake.", err.code);
          case "expired_token":
            throw authError("the login code expired before it was approved", "Run `outpost login` again.", err.code);
          case "invalid_grant":
            throw authError("the login code is no longer valid", "Run `outpost login` again.", err.code);
          case "RATE_LIMITED":
            wait = Math.max(interval, err.retryAfter ?? 60);
            continue;
          default:
            throw new CliError(EXIT.EDGE, `the edge refused the login: ${err.message} (${err.code})`, { code: err.code });
        }
      }
    }
  } catch (err) {
    spin.stop();
    throw err;
  } finally {
    process.removeListener("SIGINT", onSigint);
  }
}

async function qrText(text: string): Promise<string> {
  const qr = (await import("qrcode-terminal")).default;
  return new Promise((resolve) => qr.generate(text, { small: true }, (s: string) => resolve(s)));
}

async function loginSupabase(edgeUrl: string, email: string, options: Options): Promise<Credentials> {
  if (!/^[^\s@]+@[^\s@]+$/.test(email)) throw usageError(`--email must be an email address (got ${JSON.stringify(email)})`);
  const meta = await edgeCall(() => new EdgeClient(edgeUrl).request<Partial<OpenIdConfiguration>>(PATHS.openidConfiguration, { auth: false }));
  if (meta.auth_provider !== "supabase" || !meta.supabase_url) {
    throw usageError("this edge does not use Supabase sign-in", "Run `outpost login` without --email to approve the login on your phone.");
  }
  const anonKey = stringOpt(options, "anonKey", "--anon-key") ?? process.env.OUTPOST_SUPABASE_ANON_KEY ?? meta.supabase_anon_key;
  if (!anonKey) {
    throw configError("signing in with Supabase needs the project's anon key", "Pass --anon-key or set OUTPOST_SUPABASE_ANON_KEY.");
  }
  const password = process.env.OUTPOST_PASSWORD ?? (await readPassword(`Password for ${email}: `));
  if (!password) throw usageError("no password given", "Type it at the prompt or set OUTPOST_PASSWORD.");
  const { createClient } = await import("@supabase/supabase-js");
  const supabase = createClient(meta.supabase_url, anonKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    global: { headers: { "x-client-info": USER_AGENT } },
  });
  let result: Awaited<ReturnType<typeof supabase.auth.signInWithPassword>>;
  try {
    result = await supabase.auth.signInWithPassword({ email, password });
  } catch (err) {
    throw unreachable(meta.supabase_url, err);
  }
  const { data, error } = result;
  if (error || !data.session) {
    if (error && (error.name === "AuthRetryableFetchError" || error.status === 0)) throw unreachable(meta.supabase_url, error);
    throw authError(`Supabase refused the sign-in: ${error?.message ?? "no session"}`, "Check the email and password.");
  }
  const s = data.session;
  return {
    version: 1,
    url: edgeUrl,
    provider: "supabase",
    access_token: s.access_token,
    refresh_token: s.refresh_token,
    expires_at: s.expires_at ? s.expires_at * 1000 : Date.now() + s.expires_in * 1000,
    email,
    supabase: { url: meta.supabase_url, anon_key: anonKey },
  };
}

/** Reads a password without echo on a terminal, or the first line of stdin otherwise. */
async function readPassword(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    let text = "";
    for await (const chunk of stdin) {
      text += String(chunk);
      if (text.includes("\n")) break;
    }
    return text.split(/\r?\n/)[0] ?? "";
  }
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  stdin.setEncoding("utf8");
  return new Promise((resolve) => {
    let value = "";
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === "\r" || ch === "\n") {
          stdin.setRawMode(false);
          stdin.pause();
          stdin.removeListener("data", onData);
          process.stderr.write("\n");
          return resolve(value);
        }
        if (ch === "\u0003") {
          stdin.setRawMode(false);
          process.stderr.write("\n");
          process.exit(EXIT.INTERRUPTED);
        }
        if (ch === "\u007f") value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on("data", onData);
  });
}

async function logout(options: Options): Promise<void> {
  let creds: Credentials | null;
  try {
    creds = readCredentials();
  } catch (err) {
    if (!options.force) throw err;
    deleteCredentials();
    out.line("Deleted the unreadable credentials file (nothing could be revoked).");
    return;
  }
  if (!creds) {
    out.line(process.env.OUTPOST_TOKEN ? "No stored credentials; OUTPOST_TOKEN is set in the environment (unset it to sign out)." : "Not signed in.");
    return;
  }
  try {
    if (creds.provider === "outpost") {
      // RFC 7009: revoking the refresh token revokes this computer's device, and with it its access tokens.
      const client = new EdgeClient(creds.url);
      await client.request(PATHS.revoke, {
        auth: false,
        form: { token: creds.refresh_token, token_type_hint: "refresh_token", client_id: CLI_CLIENT_ID },
      });
    } else if (creds.supabase) {
      const res = await request(new URL(`${creds.supabase.url}/auth/v1/logout?scope=local`), {
        method: "POST",
        headers: { apikey: creds.supabase.anon_key, authorization: `Bearer ${creds.access_token}`, "user-agent": USER_AGENT },
        timeoutMs: 10_000,
      }).catch((err: unknown) => {
        throw unreachable(creds.supabase!.url, err);
      });
      res.cancel();
    }
  } catch (err) {
    const reason = err instanceof CliError ? err.message : err instanceof EdgeError ? `${err.message} (${err.code})` : String(err);
    if (!options.force) {
      throw new CliError(err instanceof CliError ? err.exitCode : EXIT.EDGE, `could not revoke the session: ${reason}`, {
        hint: "Try again when the edge is reachable, or use `outpost logout --force` to only delete the local credentials.",
      });
    }
    out.warn(`could not revoke the session at the edge (${reason}); deleting the local credentials anyway`);
  }
  deleteCredentials();
  out.line(`Signed out of ${creds.url}.`);
}

async function whoami(options: Options): Promise<void> {
  const session = Session.load(stringOpt(options, "url"));
  if (!session.signedIn) throw authError(`not signed in to ${session.edge.url}`);
  const me = await edgeCall(() => session.client().request<Me>(PATHS.me));
  const source = session.source === "env" ? "OUTPOST_TOKEN" : credentialsPath();
  if (options.json) {
    out.json({ ...me, edge: session.edge.url, tokenSource: session.source === "env" ? "env" : "file" });
    return;
  }
  out.line(out.paint("bold", me.email));
  out.line(`  role      ${me.role}`);
  out.line(`  provider  ${me.provider}`);
  if (me.deviceId) out.line(`  device    ${me.deviceId}`);
  out.line(`  edge      ${session.edge.url}`);
  const exp = session.expiresAt ?? (me.expiresAt ? me.expiresAt * 1000 : null);
  const refresh = session.canRefresh ? ", refreshed automatically" : "";
  out.line(`  token     from ${source}${exp ? `, expires ${relativeTime(exp)}${refresh}` : ""}`);
}
