// Forwards verified requests to the user's own app (--upstream): bodies streamed both ways, WebSocket upgrades piped.
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import https from "node:https";
import type { Duplex } from "node:stream";
import { ASSERTION_HEADER } from "../shared/assertion.ts";
import { OutpostError } from "../shared/errors.ts";
import { connectionListed, HOP_BY_HOP, headerSafe, PRIVATE_NO_STORE, rejectUpgrade, sendError } from "./http.ts";
import type { OutpostIdentity } from "./verify.ts";

const upstreamDown = () => new OutpostError("UPSTREAM_UNREACHABLE", "The app behind the origin is not reachable.");

export interface Forwarder {
  /** Forwards one HTTP request and streams the answer back. */
  http(req: IncomingMessage, res: ServerResponse, identity: OutpostIdentity, requestId: string): void;
  /** Forwards a WebSocket (or other) upgrade and pipes the two sockets together once the app accepts it. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, identity: OutpostIdentity, requestId: string): void;
  close(): void;
}

/** Lower case with "_" read as "-": CGI-style apps fold `X_Outpost_Role` and `X-Outpost-Role` into one variable. */
const canonicalName = (name: string) => name.toLowerCase().replaceAll("_", "-");

/** Client-controlled headers that steer a server (client address, path rewrites, method overrides): never passed on. */
const NEVER_FORWARDED = new Set([
  "forwarded",
  "x-real-ip",
  "true-client-ip",
  "x-client-ip",
  "x-original-url",
  "x-rewrite-url",
  "x-http-method-override",
  "x-http-method",
  "x-method-override",
]);

/** Headers the edge (or this origin) sets: their "_" spellings would shadow the real ones at a CGI-style app. */
const SHADOWABLE = new Set(["host", "x-request-id", "content-length", "content-type", "cookie", "authorization"]);

/**
 * The headers the app receives: the client's, minus hop-by-hop ones and the assertion, plus the verified identity.
 * X-Outpost-* always comes from the origin, never from the request; Host names the app (dev servers check it).
 */
function upstreamHeaders(rawHeaders: string[], identity: OutpostIdentity, upstreamHost: string, upgrade: boolean): string[] {
  const listed = new Set([...connectionListed(rawHeaders)].map(canonicalName));
  const out: string[] = [];
  let forwardedHost = false;
  let originalHost = "";
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const lower = name.toLowerCase();
    const canonical = canonicalName(name);
    if (lower === "host") {
      originalHost = rawHeaders[i + 1]!;
      continue;
    }
    if (lower === "upgrade" && upgrade) {
      out.push(name, rawHeaders[i + 1]!);
      continue;
    }
    if (HOP_BY_HOP.has(canonical) || listed.has(canonical) || canonical === ASSERTION_HEADER || canonical === "expect") continue;
    if (canonical.startsWith("x-outpost-") || NEVER_FORWARDED.has(canonical)) continue;
    if (name.includes("_") && (canonical.startsWith("x-forwarded-") || SHADOWABLE.has(canonical))) continue;
    if (lower === "x-forwarded-host") forwardedHost = true;
    out.push(name, rawHeaders[i + 1]!);
  }
  out.push("Host", upstreamHost);
  if (!forwardedHost && originalHost) out.push("X-Forwarded-Host", originalHost);
  if (upgrade) out.push("Connection", "Upgrade");
  out.push("X-Outpost-User", headerSafe(identity.sub), "X-Outpost-Email", headerSafe(identity.email), "X-Outpost-Role", headerSafe(identity.role));
  return out;
}

/**
 * The app's response headers minus hop-by-hop ones, as a flat [name, value, …] list (repeats such as Set-Cookie kept).
 * An answer with no caching header of its own gets `Cache-Control: private, no-store`: it is one user's answer, and
 * the tunnel's hostname sits in a Cloudflare zone whose cache would otherwise keep static-looking paths.
 */
function downstreamHeaders(rawHeaders: string[]): string[] {
  const listed = connectionListed(rawHeaders);
  const out: string[] = [];
  let caching = false;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const lower = rawHeaders[i]!.toLowerCase();
    if (HOP_BY_HOP.has(lower) || listed.has(lower)) continue;
    if (lower === "cache-control" || lower === "expires") caching = true;
    out.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  }
  if (!caching) out.push("Cache-Control", PRIVATE_NO_STORE);
  return out;
}

export function createForwarder(upstream: string): Forwarder {
  const base = new URL(upstream);
  const client = base.protocol === "https:" ? https : http;
  const agent = new client.Agent({ keepAlive: true, keepAliveMsecs: 1_000, maxFreeSockets: 64 });
  const target = { protocol: base.protocol, hostname: base.hostname.replace(/^\[|\]$/g, ""), port: base.port || undefined };
  // Piped WebSockets live outside the HTTP server's bookkeeping: close() ends them itself.
  const tunnels = new Set<Duplex>();

  return {
    http(req, res, identity, requestId) {
      const upReq = client.request({
        ...target,
        method: req.method,
        path: req.url,
        headers: upstreamHeaders(req.rawHeaders, identity, base.host, false),
        agent,
      });
      upReq.setNoDelay(true);
      upReq.on("response", (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, downstreamHeaders(upRes.rawHeaders));
        // Headers go out now: a Server-Sent Events stream must not wait for its first chunk to be buffered.
        res.flushHeaders();
        upRes.pipe(res);
        upRes.on("error", () => res.destroy());
        upRes.on("aborted", () => res.destroy());
      });
      upReq.on("error", (err) => {
        if (!res.headersSent) sendError(res, upstreamDown(), requestId);
        else res.destroy(err);
      });
      // The client went away (or the edge cut the stream): stop the app's request too.
      res.on("close", () => {
        if (!res.writableFinished) upReq.destroy();
      });
      req.on("error", () => upReq.destroy());
      req.pipe(upReq);
    },

    upgrade(req, socket, head, identity, requestId) {
      const upReq = client.request({
        ...target,
        method: req.method,
        path: req.url,
        headers: upstreamHeaders(req.rawHeaders, identity, base.host, true),
        agent: false,
      });
      socket.on("error", () => upReq.destroy());
      upReq.on("upgrade", (upRes, upSocket, upHead) => {
        const lines = [`HTTP/1.1 101 ${upRes.statusMessage || "Switching Protocols"}`];
        const raw = upRes.rawHeaders;
        for (let i = 0; i < raw.length; i += 2) lines.push(`${raw[i]}: ${raw[i + 1]}`);
        socket.write(`${lines.join("\r\n")}\r\n\r\n`);
        if (upHead.length > 0) socket.write(upHead);
        if (head.length > 0) upSocket.write(head);
        upSocket.setNoDelay(true);
        tunnels.add(socket).add(upSocket);
        const end = () => {
          socket.destroy();
          upSocket.destroy();
          tunnels.delete(socket);
          tunnels.delete(upSocket);
        };
        upSocket.on("error", end).on("close", end);
        socket.on("error", end).on("close", end);
        upSocket.pipe(socket).pipe(upSocket);
      });
      // The app answered without switching protocols (a 400, a 404): relay that answer as it is.
      upReq.on("response", (upRes) => {
        const lines = [`HTTP/1.1 ${upRes.statusCode} ${upRes.statusMessage ?? ""}`];
        const raw = downstreamHeaders(upRes.rawHeaders);
        for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() !== "content-length") lines.push(`${raw[i]}: ${raw[i + 1]}`);
        lines.push("Connection: close");
        socket.write(`${lines.join("\r\n")}\r\n\r\n`);
        upRes.pipe(socket);
        upRes.on("error", () => socket.destroy());
      });
      upReq.on("error", () => rejectUpgrade(socket, upstreamDown(), requestId));
      upReq.end();
    },

    close() {
      for (const s of tunnels) s.destroy();
      agent.destroy();
    },
  };
}
