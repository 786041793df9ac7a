// Parses the Worker's environment once into a typed config; problems are reported by name, never by value.

export interface Config {
  originUrl: URL;
  publicUrl: URL | null;
  /** Exact origins allowed by CORS and for WebSocket upgrades. */
  corsOrigins: ReadonlySet<string>;
  maxBodyBytes: number;
  /** Path prefixes proxied to the origin ("/api/*" becomes "/api/" and "/api"). */
  proxyPaths: readonly string[];
  originTimeoutMs: number;
  readyTimeoutMs: number;
}

export interface ConfigProblem {
  setting: string;
  reason: string;
}

export type ConfigResult =
  | { ok: true; config: Config }
  | { ok: false; problems: ConfigProblem[] };

/** Browsers on these origins reach a local stack without any setting. */
export const DEV_ORIGINS = ["http://localhost:5173", "http://localhost:8787", "http://127.0.0.1:8787"];

type RawEnv = Partial<Record<keyof Env, unknown>>;

const cache = new WeakMap<object, ConfigResult>();

/** The config for this env object, parsed on first use and then reused for the isolate's life. */
export function getConfig(env: RawEnv): ConfigResult {
  let result = cache.get(env);
  if (!result) {
    result = parseConfig(env);
    cache.set(env, result);
  }
  return result;
}

export function parseConfig(env: RawEnv): ConfigResult {
  const problems: ConfigProblem[] = [];
  const str = (name: keyof Env): string => {
    const v = env[name];
    return typeof v === "string" ? v.trim() : "";
  };
  const url = (name: keyof Env, required: boolean): URL | null => {
    const raw = str(name);
    if (!raw) {
      if (required) problems.push({ setting: name, reason: "is required" });
      return null;
    }
    const parsed = URL.canParse(raw) ? new URL(raw) : null;
    if (!parsed || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) {
      problems.push({ setting: name, reason: "must be an http(s) URL" });
      return null;
    }
    if (parsed.username || parsed.password || parsed.search || parsed.hash) {
      problems.push({ setting: name, reason: "must not contain credentials, a query or a fragment" });
      return null;
    }
    return parsed;
  };
  const int = (name: keyof Env, fallback: number, min: number, max: number): number => {
    const raw = str(name);
    if (!raw) return fallback;
    const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      problems.push({ setting: name, reason: `must be an integer from ${min} to ${max}` });
      return fallback;
    }
    return n;
  };

  const originUrl = url("ORIGIN_URL", true);
  const publicUrl = url("PUBLIC_URL", false);

  const corsOrigins = new Set(DEV_ORIGINS);
  if (publicUrl) corsOrigins.add(publicUrl.origin);
  for (const item of splitList(str("CORS_ORIGINS"))) {
    const parsed = URL.canParse(item) ? new URL(item) : null;
    const web = parsed?.protocol === "http:" || parsed?.protocol === "https:";
    if (!parsed || !web || parsed.origin !== item.replace(/\/$/, "")) {
      problems.push({ setting: "CORS_ORIGINS", reason: "must be a comma-separated list of origins like https://app.example.com" });
      break;
    }
    corsOrigins.add(parsed.origin);
  }

  const proxyPaths: string[] = [];
  const rawPaths = str("PROXY_PATHS") || "/api/*,/socket.io/*";
  for (const item of splitList(rawPaths)) {
    if (!/^\/[A-Za-z0-9._~\-/]*\*?$/.test(item) || item.includes("//") || item.includes("/../")) {
      problems.push({ setting: "PROXY_PATHS", reason: "must be a comma-separated list of path prefixes like /api/*" });
      break;
    }
    proxyPaths.push(item.endsWith("*") ? item.slice(0, -1) : item);
  }

  const maxBodyBytes = int("MAX_BODY_BYTES", 10 * 1024 * 1024, 1, 100 * 1024 * 1024);
  const originTimeoutMs = int("ORIGIN_TIMEOUT_MS", 30_000, 100, 100_000);
  const readyTimeoutMs = int("READY_TIMEOUT_MS", 2_000, 100, 30_000);

  if (problems.length > 0 || !originUrl) return { ok: false, problems };
  return {
    ok: true,
    config: { originUrl, publicUrl, corsOrigins, maxBodyBytes, proxyPaths, originTimeoutMs, readyTimeoutMs },
  };
}

function splitList(raw: string): string[] {
  return raw
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Whether a request path falls under one of the proxied prefixes. */
export function isProxyPath(config: Config, path: string): boolean {
  return config.proxyPaths.some((p) => (p.endsWith("/") ? path.startsWith(p) || path === p.slice(0, -1) : path === p));
}
