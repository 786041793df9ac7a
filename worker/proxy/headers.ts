// Which request and response headers cross the gateway, and which the gateway sets itself.
import { REQUEST_ID_HEADER } from "../../shared/paths.ts";

const HOP_BY_HOP = new Set(["connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"]);

// Identity and forwarding headers a client could forge; only the gateway may set these.
const CLIENT_FORGEABLE_PREFIXES = ["x-forwarded-", "x-outpost-", "outpost-", "proxy-", "cf-"];
const CLIENT_FORGEABLE = new Set([
  "x-real-ip",
  "forwarded",
  "true-client-ip",
  "x-client-ip",
  "x-request-id",
  "host",
  "content-length",
  // Servers that honour these route a request to another path than the one the edge checked.
  "x-original-url",
  "x-rewrite-url",
  // These turn a GET (all a viewer may send) into a write at frameworks that honour them.
  "x-http-method-override",
  "x-http-method",
  "x-method-override",
]);

/**
 * How a header name is compared: lower case, with "_" read as "-". CGI-style servers (PHP, WSGI, Rack, many
 * frameworks) fold both spellings into one variable, so `X_Outpost_Role` would stand in for `X-Outpost-Role`.
 */
function canonicalName(name: string): string {
  return name.toLowerCase().replaceAll("_", "-");
}

function connectionListed(headers: Headers): Set<string> {
  const listed = new Set<string>();
  for (const token of (headers.get("connection") ?? "").split(",")) {
    const name = token.trim();
    if (name) listed.add(canonicalName(name));
  }
  return listed;
}

/** Whether a client's header must not reach the origin, whatever the case or "_" spelling of its name. */
function isGatewayOwned(name: string, listed: Set<string>): boolean {
  const canonical = canonicalName(name);
  return (
    HOP_BY_HOP.has(canonical) || listed.has(canonical) || CLIENT_FORGEABLE.has(canonical) || CLIENT_FORGEABLE_PREFIXES.some((p) => canonical.startsWith(p))
  );
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

/** Outpost's own cookies (refresh, scoped access), under any prefix or case: for the edge only, in either direction. */
function isOwnCookieName(name: string): boolean {
  return /^(__host-|__secure-)?outpost_/i.test(name.trim());
}

function withoutOwnCookies(cookieHeader: string): string {
  return cookieHeader
    .split(";")
    .map((part) => part.trim())
    .filter((part) => part && !isOwnCookieName(part.split("=", 1)[0]!))
    .join("; ");
}

/** The headers sent to the origin: the client's, minus hop-by-hop and forgeable ones, plus the gateway's own. */
export function forwardRequestHeaders(incoming: Headers, ctx: ForwardContext): Headers {
  const listed = connectionListed(incoming);
  const out = new Headers();
  for (const [name, value] of incoming) {
    if (isGatewayOwned(name, listed)) continue;
    const canonical = canonicalName(name);
    if (ctx.dropCredentials && canonical === "authorization") continue;
    if (canonical === "cookie") {
      // "Cookie" is the only spelling a cookie may take; a "_" variant is no cookie the origin should read.
      if (name.toLowerCase() !== "cookie") continue;
      if (ctx.dropCredentials) {
        const kept = withoutOwnCookies(value);
        if (kept) out.append(name, kept);
        continue;
      }
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

/**
 * Response headers a proxied page must not send, because the page shares the web app's origin: they would reach past
 * the proxied path to the web app itself (a service worker scoped above the page, wiping the app's storage).
 */
const FOREIGN_TO_PROXIED = new Set(["service-worker-allowed", "clear-site-data"]);

/** The name a Set-Cookie value sets: what comes before the first "=" (RFC 6265 §5.2). */
function cookieNameOf(setCookie: string): string {
  const pair = setCookie.split(";", 1)[0]!;
  return pair.includes("=") ? pair.slice(0, pair.indexOf("=")) : "";
}

/**
 * The origin's response headers minus hop-by-hop ones, the headers above, and any Set-Cookie for one of Outpost's own
 * cookie names (a proxied page could otherwise plant a refresh or scoped cookie of its choosing).
 */
export function forwardResponseHeaders(incoming: Headers): Headers {
  const listed = connectionListed(incoming);
  const out = new Headers();
  for (const [name, value] of incoming) {
    const canonical = canonicalName(name);
    if (HOP_BY_HOP.has(canonical) || listed.has(canonical) || canonical.startsWith("proxy-") || FOREIGN_TO_PROXIED.has(canonical)) continue;
    if (canonical === "set-cookie" && isOwnCookieName(cookieNameOf(value))) continue;
    out.append(name, value);
  }
  return out;
}
