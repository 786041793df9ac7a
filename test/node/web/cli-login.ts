// Drives the device-code login the phone approves: the real `outpost login` CLI, or (where the CLI is not built) its polling done with fetch.
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const CLI = join(ROOT, "cli", "dist", "outpost.mjs");
const CLI_BUILD = join(ROOT, "cli", "build.ts");

interface Login {
  code: string;
  /** What the CLI's QR code encodes: verification_uri_complete. */
  link: string;
  /** Resolves when the login ends: exit code 0 once approved, with what it printed. */
  exit: Promise<{ code: number | null; output: string }>;
}

export interface LoginDriver {
  /** "cli" when the real CLI runs; "fetch" when the test polls the token endpoint itself. */
  kind: "cli" | "fetch";
  start(edgeUrl: string): Promise<Login>;
  /** Whether the credentials the last approved login got still work. */
  signedIn(edgeUrl: string): Promise<boolean>;
}

/** The real CLI (`npm run build:cli` → cli/dist/outpost.mjs), built first if only its sources are here. */
function cliDriver(home: string): LoginDriver {
  const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: home, NO_COLOR: "1", OUTPOST_URL: "" };
  return {
    kind: "cli",
    async start(edgeUrl) {
      const child = spawn(process.execPath, [CLI, "login", "--url", edgeUrl, "--no-qr"], { env, stdio: ["ignore", "pipe", "pipe"] });
      let output = "";
      const exit = new Promise<{ code: number | null; output: string }>((resolve) => child.once("exit", (code) => resolve({ code, output })));
      const printed = await new Promise<{ code: string; uri: string }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`outpost login printed no code: ${output}`)), 15_000);
        const onData = (chunk: Buffer) => {
          output += chunk.toString();
          const code = /code:\s*([A-Z]{4}-[A-Z]{4})/.exec(output)?.[1];
          const uri = /(https?:\/\/\S+\/device)\b/.exec(output)?.[1];
          if (code && uri) {
            clearTimeout(timer);
            resolve({ code, uri });
          }
        };
        child.stdout!.on("data", onData);
        child.stderr!.on("data", onData);
        void exit.then(() => reject(new Error(`outpost login exited early: ${output}`)));
      });
      return { code: printed.code, link: `${printed.uri}#code=${printed.code}`, exit };
    },
    async signedIn(edgeUrl) {
      return spawnSync(process.execPath, [CLI, "whoami", "--url", edgeUrl], { env, encoding: "utf8" }).status === 0;
    },
  };
}

/** RFC 8628 polling as the CLI does it, for when the CLI is not available. */
function fetchDriver(): LoginDriver {
  let accessToken: string | null = null;
  return {
    kind: "fetch",
    async start(edgeUrl) {
      const res = await fetch(`${edgeUrl}/auth/device/code`, {
        method: "POST",
        body: new URLSearchParams({
          client_id: "outpost-cli",
          client_name: "outpost-cli",
          hostname: hostname(),
          platform: process.platform,
          arch: process.arch,
        }),
      });
      const dc = (await res.json()) as { device_code: string; user_code: string; verification_uri_complete: string; interval: number };
      const exit = (async () => {
        for (;;) {
          await new Promise((r) => setTimeout(r, dc.interval * 1000));
          const poll = await fetch(`${edgeUrl}/auth/device/token`, {
            method: "POST",
            body: new URLSearchParams({ grant_type: "urn:ietf:params:oauth:grant-type:device_code", device_code: dc.device_code, client_id: "outpost-cli" }),
          });
          // The token endpoint answers errors in RFC 6749's shape: {"error":"authorization_pending",...}.
          const body = (await poll.json()) as { access_token?: string; error?: string };
          if (poll.ok && body.access_token) {
            accessToken = body.access_token;
            return { code: 0, output: "Signed in" };
          }
          const code = body.error;
          if (code !== "authorization_pending" && code !== "slow_down") return { code: 1, output: `login ${code === "access_denied" ? "denied" : code}` };
        }
      })();
      return { code: dc.user_code, link: dc.verification_uri_complete, exit };
    },
    async signedIn(edgeUrl) {
      if (!accessToken) return false;
      return (await fetch(`${edgeUrl}/auth/me`, { headers: { authorization: `Bearer ${accessToken}` } })).ok;
    },
  };
}

/**
 * The CLI when it is (or can be) built, else the fetch driver (OUTPOST_TEST_LOGIN=fetch forces it);
 * `home` isolates the CLI's stored credentials.
 */
export function loginDriver(home: string): LoginDriver {
  if (process.env.OUTPOST_TEST_LOGIN === "fetch") return fetchDriver();
  if (!existsSync(CLI) && existsSync(CLI_BUILD)) spawnSync(process.execPath, [CLI_BUILD], { cwd: ROOT, stdio: "ignore" });
  return existsSync(CLI) ? cliDriver(home) : fetchDriver();
}
