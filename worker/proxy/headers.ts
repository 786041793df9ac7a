// Which request and response headers cross the gateway, and which the gateway sets itself.
import { REQUEST_ID_HEADER } from "../../shared/paths.ts";

const HOP_BY_HOP = new Set(["connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"]);

// Identity and forwarding headers a client could forge; only the gateway may set these.
const CLIENT_FORGEABLE_PREFIXES = ["x-forwarded-", "x-outpost-", "outpost-"];
const CLIENT_FORGEABLE = new Set(["x-real-ip", "forwarded", "x-request-id", "host", "content-length"]);

function connectionListed(headers: Headers): Set<string> {
  const listed = new Set<string>();
  for (const token of (headers.get("connection") ?? "").split(",")) {
    const name = token.trim().toLowerCase();
    if (name) listed.add(name);
  }
  return listed;
}

export interface ForwardContext {
  clientIp: string;
  /** The URL the client used, for X-Forwarded-Proto and -Host. */
  publicUrl: URL;
  requestId: string;
  /** Keep the Upgrade handshake headers for a WebSocket upgrade. */
  websocket: boolean;
  /** Drop the client's Authorization header and Outpost's own cookies: the origin gets an assertion instead. */
  dropCredentials?: boolean;
}

// Outpost's cookies (refresh, scoped access) are for the edge only.
const OWN_COOKIE = /^outpost_/;

function withoutOwnCookies(cookieHeader: string): string {
  return cookieHeader
    .split(";")
    .map((part) => part.trim())
    .filter((part) => part && !OWN_COOKIE.test(part))
    .join("; ");
}

/** The headers sent to the origin: the client's, minus hop-by-hop and forgeable ones, plus the gateway's own. */
export function forwardRequestHeaders(incoming: Headers, ctx: ForwardContext): Headers {
  const listed = connectionListed(incoming);
  const out = new Headers();
  for (const [name, value] of incoming) {
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || listed.has(lower) || CLIENT_FORGEABLE.has(lower)) continue;
    // Proxy-* headers are meant for a proxy (this one): none of them is for the origin.
    if (lower.startsWith("proxy-")) continue;
    if (CLIENT_FORGEABLE_PREFIXES.some((p) => lower.startsWith(p))) continue;
    if (lower.startsWith("cf-")) continue;
    if (ctx.dropCredentials && lower === "authorization") continue;
    if (ctx.dropCredentials && lower === "cookie") {
      const kept = withoutOwnCookies(value);
      if (kept) out.append(name, kept);
      continue;
    }
    out.append(name, value);
  }
  if (ctx.websocket) out.set("Upgrade", "websocket");
  out.set("X-Forwarded-For", ctx.clientIp);
  out.set("X-Forwarded-Proto", ctx.publicUrl.protocol.slice(0, -1));
  out.set("X-Forwarded-Host", ctx.publicUrl.host);
  out.set(REQUEST_ID_HEADER, ctx.requestId);
  return out;
}

/** The origin's response headers minus hop-by-hop ones. */
export function forwardResponseHeaders(incoming: Headers): Headers {
  const listed = connectionListed(incoming);
  const out = new Headers();
  for (const [name, value] of incoming) {
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || listed.has(lower) || lower.startsWith("proxy-")) continue;
    out.append(name, value);
  }
  return out;
}
