// Where the CLI keeps its state, and how it picks the edge URL: flags, then environment, then the credentials file.
import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import { isAbsolute, join } from "node:path";
import type { Provider } from "../../shared/identity.ts";
import { AUTH_PROVIDER, httpUrl, isPlainHttpToNetwork, plainHttpReason } from "../../shared/settings/index.ts";
import { configError, usageError } from "./errors.ts";
import { withFileLock } from "./lock.ts";

export interface Credentials {
  version: 1;
  /** The edge these tokens belong to (an origin); they are never sent anywhere else. */
  url: string;
  provider: Provider;
  access_token: string;
  refresh_token: string;
  /** Access-token expiry, milliseconds since the epoch. */
  expires_at: number;
  device_id?: string;
  email?: string;
  /** Supabase sessions refresh at Supabase, with the project's public anon key. */
  supabase?: { url: string; anon_key: string };
}

function configDir(): string {
  const xdg = process.env.XDG_CONFIG_HOME;
  const base = xdg && isAbsolute(xdg) ? xdg : join(os.homedir(), ".config");
  return join(base, "outpost");
}

export function credentialsPath(): string {
  return join(configDir(), "credentials.json");
}

/** The stored credentials, or null when there are none; a file that cannot be used is a configuration error. */
export function readCredentials(): Credentials | null {
  const file = credentialsPath();
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw configError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? "error"}`, "Check its permissions, or delete it and run `outpost login`.");
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    data = null;
  }
  if (!isCredentials(data)) {
    throw configError(`the credentials file ${file} is corrupt`, "Delete it and run `outpost login` again.");
  }
  return data;
}

function isCredentials(v: unknown): v is Credentials {
  if (typeof v !== "object" || v === null) return false;
  const c = v as Record<string, unknown>;
  return (
    c.version === 1 &&
    typeof c.url === "string" &&
    URL.canParse(c.url) &&
    typeof c.provider === "string" &&
    AUTH_PROVIDER.type.parse(c.provider).ok &&
    typeof c.access_token === "string" &&
    typeof c.refresh_token === "string" &&
    typeof c.expires_at === "number"
  );
}

/** Writes atomically (temp file + rename) with mode 0600 in a 0700 directory. */
export function writeCredentials(creds: Credentials): void {
  const dir = configDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = credentialsPath();
  // Unique per process and call; "wx" below refuses to follow or reuse anything already there.
  const tmp = `${file}.${process.pid}.${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(creds, null, 2)}\n`, { mode: 0o600, flag: "wx" });
  try {
    renameSync(tmp, file);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
    throw err;
  }
  chmodSync(file, 0o600);
}

export function deleteCredentials(): boolean {
  try {
    unlinkSync(credentialsPath());
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}

/** The credentials file's permission bits, or null when it does not exist. */
export function credentialsMode(): number | null {
  try {
    return statSync(credentialsPath()).mode & 0o777;
  } catch {
    return null;
  }
}

/**
 * Runs `fn` holding an exclusive lock next to the credentials file, so two CLIs never rotate the same refresh token:
 * the second waits, then finds the first one's tokens on disk and uses them. A lock whose holder has exited, or has
 * not touched it for 30 s, is taken over by exactly one waiting process (lock.ts).
 */
export async function withCredentialsLock<T>(fn: () => Promise<T>): Promise<T> {
  mkdirSync(configDir(), { recursive: true, mode: 0o700 });
  const lock = `${credentialsPath()}.lock`;
  return withFileLock(lock, fn, {
    waitMs: 15_000,
    onTimeout: () => configError(`${lock} is held by another outpost process`, "Delete it if no outpost is running."),
  });
}

export type UrlSource = "flag" | "env" | "file";

export interface EdgeTarget {
  url: string;
  source: UrlSource;
}

const EDGE_URL = httpUrl({ originOnly: true });

let plainHttpAllowed = false;

/** `--insecure`: for the rest of this process, an edge URL may be plain http to a host that is not loopback. */
export function allowPlainHttp(): void {
  plainHttpAllowed = true;
}

/**
 * An edge URL as an origin; anything but http(s) without user info is refused, and so is plain http to a host that is
 * not loopback (tokens would cross the network in the clear) unless --insecure was given. The stored URL is not checked
 * again: it got there through a checked --url or OUTPOST_URL.
 */
export function parseEdgeUrl(raw: string, source: UrlSource): string {
  const where = source === "flag" ? "--url" : source === "env" ? "OUTPOST_URL" : `the url in ${credentialsPath()}`;
  const fail = () =>
    source === "file"
      ? configError(`${where} is not a valid edge URL`, "Run `outpost login --url <edge>` again.")
      : usageError(`${where} is not a valid edge URL: ${JSON.stringify(raw)}`, "Use the edge's address, e.g. https://outpost.example.com.");
  const parsed = EDGE_URL.parse(raw);
  if (!parsed.ok) throw fail();
  if (source !== "file" && !plainHttpAllowed && isPlainHttpToNetwork(parsed.value)) {
    throw usageError(`${where} ${plainHttpReason("--insecure")}`, "Use the edge's https:// address, or add --insecure on a network you trust.");
  }
  return parsed.value.origin;
}

/** The edge URL by precedence: --url, then OUTPOST_URL, then the credentials file; null when none is set. */
export function resolveEdge(flag: unknown, creds: Credentials | null): EdgeTarget | null {
  if (flag !== undefined && flag !== true && flag !== "") return { url: parseEdgeUrl(String(flag), "flag"), source: "flag" };
  if (flag === true) throw usageError("--url needs a value");
  const env = process.env.OUTPOST_URL;
  if (env) return { url: parseEdgeUrl(env, "env"), source: "env" };
  if (creds) return { url: parseEdgeUrl(creds.url, "file"), source: "file" };
  return null;
}

export function requireEdge(flag: unknown, creds: Credentials | null): EdgeTarget {
  const target = resolveEdge(flag, creds);
  if (!target) throw configError("no edge URL is configured", "Pass --url <edge>, set OUTPOST_URL, or run `outpost login --url <edge>`.");
  return target;
}
