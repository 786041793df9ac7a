// The Worker's origin and proxy settings, declared once, and the typed Config parsed from them.
import { isLoopbackHost, isPlainHttpToNetwork, plainHttpReason } from "./plain-http.ts";
import { httpUrl, int, oneOf, origins, pathPrefixes, perEnv, setting, SettingsReader, type ConfigProblem, type SettingGroup } from "./types.ts";

/** Where `npm start` runs the Worker and the origin on this machine. */
export const EDGE_PORT = 8787;
export const ORIGIN_PORT = 8788;
export const LOCAL_HOST = "127.0.0.1";

/** Browsers on these origins reach a local stack without any setting (the Vite dev server and the local edge). */
export const DEV_ORIGINS = ["http://localhost:5173", `http://localhost:${EDGE_PORT}`, `http://${LOCAL_HOST}:${EDGE_PORT}`];

const MiB = 1024 * 1024;

export const ORIGIN_URL = setting({
  name: "ORIGIN_URL",
  type: httpUrl(),
  required: true,
  example: `http://${LOCAL_HOST}:${ORIGIN_PORT}`,
  description:
    "Where the Worker sends proxied requests and where `/ready` checks `/health`: the hostname your Cloudflare Tunnel exposes. Locally, the origin `npm start` runs.",
  details:
    "Only the scheme, host and port are used: the request's own path and query replace any path in `ORIGIN_URL`, so `https://origin.example.com/base` behaves like `https://origin.example.com`.",
});

const ALLOW_INSECURE_ORIGIN = setting({
  name: "ALLOW_INSECURE_ORIGIN",
  type: oneOf(["false", "true"]),
  default: "false",
  description:
    "`true` lets `ORIGIN_URL` be plain `http://` to a host that is not loopback. Every proxied request carries a signed assertion and the user's data, so leave it `false` unless that network is private.",
  details: "Loopback (`localhost`, `127.0.0.0/8`, `[::1]`) may always be `http://`, as `npm start` uses it. A Cloudflare Tunnel hostname is `https://`.",
});

export const PUBLIC_URL = setting({
  name: "PUBLIC_URL",
  type: httpUrl(),
  example: `http://localhost:${EDGE_PORT}`,
  defaultText: "none; forwarded headers then describe the URL of each incoming request",
  requiredWhen:
    "For identity: without it `/ready` fails with `PUBLIC_URL is required` and no token is signed. Set it in production, especially with a custom domain.",
  description:
    "The URL people use to reach this deployment. Its origin is allowed by CORS and for WebSocket upgrades, the origin receives its scheme and host as `X-Forwarded-Proto` and `X-Forwarded-Host`, and its origin is the **issuer** of every token Outpost signs and where enrollment and device links point.",
});

const CORS_ORIGINS = setting({
  name: "CORS_ORIGINS",
  type: origins,
  default: "",
  requiredWhen: "Only when another site (not `PUBLIC_URL`) calls this gateway from a browser.",
  description: "Extra browser origins allowed by CORS (with credentials) and for WebSocket upgrades on proxied paths.",
  details: `Always allowed, whatever this says: \`PUBLIC_URL\`'s origin. The local development origins ${DEV_ORIGINS.map((o) => `\`${o}\``).join(", ")} are allowed too, but only while \`PUBLIC_URL\` is itself local (\`localhost\`, \`127.0.0.1\` or \`[::1]\`): a deployment never trusts pages served from whatever machine a visitor runs, which any program on it could serve.`,
});

const MAX_BODY_BYTES = setting({
  name: "MAX_BODY_BYTES",
  type: int(1, 100 * MiB),
  default: String(10 * MiB),
  defaultText: `\`${10 * MiB}\` (10 MiB)`,
  description:
    "The largest request body forwarded to the origin, in bytes (at most 100 MiB). A larger declared `Content-Length` is refused with 413 `PAYLOAD_TOO_LARGE` before anything is sent; a body without a length is counted while it streams and cut off at the cap.",
});

const PROXY_PATHS = setting({
  name: "PROXY_PATHS",
  type: pathPrefixes,
  default: "/api/*,/socket.io/*",
  description:
    "Which request paths the Worker forwards to the origin. `/api/*` covers `/api` and everything under `/api/`; an entry without `*` matches that one path.",
  details:
    "A path reaches the Worker at all only if it is listed in `run_worker_first` under `[assets]` in `wrangler.toml`; any other path is answered from the static assets (unknown paths get the web app's `index.html`). Add a new prefix in both places.",
});

const VIEWER_WEBSOCKET_PATHS = setting({
  name: "VIEWER_WEBSOCKET_PATHS",
  type: pathPrefixes,
  default: "",
  defaultText: "none: viewers open no WebSocket to the origin",
  requiredWhen: "Only when viewers should see a live stream from your app (e.g. `/api/ws/events`).",
  description:
    "Proxied WebSocket paths that viewers may open, read-only: the edge relays what the origin sends and drops every message the viewer sends. On any other proxied path a viewer's upgrade is refused with 403 `FORBIDDEN` (a WebSocket upgrade is a GET, but what it carries afterwards can be anything).",
  details:
    "Same syntax as `PROXY_PATHS`. Members and owners are not affected. A socket opened by a member or owner who is later demoted to viewer is closed at the next check (every 30 s), like a revoked device's.",
});

const ORIGIN_TIMEOUT_MS = setting({
  name: "ORIGIN_TIMEOUT_MS",
  type: int(100, 100_000),
  default: "30000",
  description:
    "How long a proxied request waits for the origin's response headers, in milliseconds, before the Worker answers 504 `ORIGIN_TIMEOUT`. A response that has started (a download, Server-Sent Events) is not cut off.",
});

const READY_TIMEOUT_MS = setting({
  name: "READY_TIMEOUT_MS",
  type: int(100, 30_000),
  default: "2000",
  description: "How long `/ready` waits for the origin's `/health`, in milliseconds.",
});

export const PROXY_GROUP: SettingGroup = {
  title: "Origin and proxy",
  intro: "Where the Worker finds the origin, what it forwards there, and how long it waits.",
  settings: [
    ORIGIN_URL,
    ALLOW_INSECURE_ORIGIN,
    PUBLIC_URL,
    CORS_ORIGINS,
    MAX_BODY_BYTES,
    PROXY_PATHS,
    VIEWER_WEBSOCKET_PATHS,
    ORIGIN_TIMEOUT_MS,
    READY_TIMEOUT_MS,
  ],
};

export interface Config {
  originUrl: URL;
  publicUrl: URL | null;
  /** Exact origins allowed by CORS and for WebSocket upgrades. */
  corsOrigins: ReadonlySet<string>;
  maxBodyBytes: number;
  /** Path prefixes proxied to the origin ("/api/*" becomes "/api/" and "/api"). */
  proxyPaths: readonly string[];
  /** Proxied WebSocket paths viewers may open read-only (same matching as proxyPaths). */
  viewerWebSocketPaths: readonly string[];
  originTimeoutMs: number;
  readyTimeoutMs: number;
}

export type ConfigResult = { ok: true; config: Config } | { ok: false; problems: ConfigProblem[] };

export function parseConfig(env: object): ConfigResult {
  const settings = new SettingsReader(env);
  const originUrl = settings.read(ORIGIN_URL);
  const allowInsecureOrigin = settings.read(ALLOW_INSECURE_ORIGIN) === "true";
  // Every proxied request carries an assertion and the user's data to the origin: in the clear only on this machine.
  if (originUrl && isPlainHttpToNetwork(originUrl) && !allowInsecureOrigin) {
    settings.problem(ORIGIN_URL.name, plainHttpReason(`${ALLOW_INSECURE_ORIGIN.name}=true`));
  }
  const publicUrl = settings.read(PUBLIC_URL);
  // A page on the visitor's own machine is ours only when the deployment itself is local.
  const corsOrigins = new Set(publicUrl && isLoopbackHost(publicUrl.hostname) ? DEV_ORIGINS : []);
  if (publicUrl) corsOrigins.add(publicUrl.origin);
  for (const origin of settings.read(CORS_ORIGINS)) corsOrigins.add(origin);
  const proxyPaths = settings.read(PROXY_PATHS);
  const viewerWebSocketPaths = settings.read(VIEWER_WEBSOCKET_PATHS);
  const maxBodyBytes = settings.read(MAX_BODY_BYTES);
  const originTimeoutMs = settings.read(ORIGIN_TIMEOUT_MS);
  const readyTimeoutMs = settings.read(READY_TIMEOUT_MS);
  if (settings.problems.length > 0 || !originUrl) return { ok: false, problems: settings.problems };
  return {
    ok: true,
    config: { originUrl, publicUrl, corsOrigins, maxBodyBytes, proxyPaths, viewerWebSocketPaths, originTimeoutMs, readyTimeoutMs },
  };
}

/** The config for this env object, parsed on first use and then reused for the isolate's life. */
export const getConfig: (env: object) => ConfigResult = perEnv(parseConfig);

/** Whether a path falls under one of these prefixes ("/api/" also matches "/api"; an entry without "/" at the end, that one path). */
function underPrefix(prefixes: readonly string[], path: string): boolean {
  return prefixes.some((p) => (p.endsWith("/") ? path.startsWith(p) || path === p.slice(0, -1) : path === p));
}

/** Whether a request path falls under one of the proxied prefixes. */
export function isProxyPath(config: Config, path: string): boolean {
  return underPrefix(config.proxyPaths, path);
}

/** Whether a viewer may open a (read-only) WebSocket on this proxied path. */
export function isViewerWebSocketPath(config: Config, path: string): boolean {
  return underPrefix(config.viewerWebSocketPaths, path);
}
