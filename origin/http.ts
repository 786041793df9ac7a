// Plumbing shared by the origin's HTTP paths: error answers in the standard shape, request ids, hop-by-hop headers, raw socket answers.
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import { errorBody, type OutpostError } from "../shared/errors.ts";

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** What answers without a caching header of their own get: they are for one user, never for a shared cache. */
export const PRIVATE_NO_STORE = "private, no-store";

/** The edge's X-Request-Id when it sent a sane one, else a fresh id. */
export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers["x-request-id"];
  return typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
}

/** Answers with the standard JSON error shape, the status from the error's code; `headers` add to the error's own. */
export function sendError(res: ServerResponse, err: OutpostError, requestId: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(errorBody(err.code, err.message, requestId));
  res.writeHead(err.status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": String(Buffer.byteLength(body)),
    "cache-control": "no-store",
    ...err.headers,
    ...headers,
  });
  res.end(body);
}

/** Answers an upgrade request on its raw socket (no HTTP response object exists there) and closes it. */
export function rejectUpgrade(socket: Duplex, err: OutpostError, requestId: string): void {
  if (socket.destroyed) return;
  const body = JSON.stringify(errorBody(err.code, err.message, requestId));
  socket.end(
    `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? ""}\r\n` +
      "Content-Type: application/json; charset=utf-8\r\n" +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      "Cache-Control: no-store\r\nConnection: close\r\n\r\n" +
      body,
  );
  socket.once("finish", () => socket.destroy());
}

/** Connection-scoped headers: they describe one hop and are never forwarded (RFC 9110 §7.6.1). */
export const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "http2-settings",
]);

/** Header names listed in Connection (they are hop-by-hop too), lower-case. */
export function connectionListed(rawHeaders: string[]): Set<string> {
  const listed = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() !== "connection") continue;
    for (const token of rawHeaders[i + 1]!.split(",")) {
      const name = token.trim().toLowerCase();
      if (name) listed.add(name);
    }
  }
  return listed;
}

/** The path of a request target ("/a/b?x" → "/a/b"), without parsing or normalising it. */
export function pathOf(target: string | undefined): string {
  const url = target ?? "/";
  const q = url.indexOf("?");
  return q === -1 ? url : url.slice(0, q);
}

/** A header value that is safe to send: printable ASCII as is, anything else percent-encoded. */
export function headerSafe(value: string): string {
  return /^[\x20-\x7e]*$/.test(value) ? value : encodeURIComponent(value);
}
