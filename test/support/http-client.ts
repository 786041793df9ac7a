// HTTP clients for end-to-end tests that fetch() cannot express: raw request lines, streamed uploads, timed SSE reads.
import { createHash } from "node:crypto";
import http from "node:http";
import net from "node:net";

/** The Authorization header that carries a bearer token (an Outpost access token, say). */
export function bearer(token: string): Record<string, string> {
  return { Authorization: `Bearer ${token}` };
}

/**
 * fetch() that sends `Authorization: Bearer <token>` with every request; headers given per call are kept, and an
 * Authorization given per call wins. `token` may be a function, for a token minted after the helper was made.
 */
export function fetchWithBearer(token: string | (() => string)): typeof fetch {
  return (input, init = {}) => {
    const headers = new Headers(bearer(typeof token === "function" ? token() : token));
    new Headers(init.headers).forEach((value, name) => {
      headers.set(name, value);
    });
    return fetch(input, { ...init, headers });
  };
}

export interface RawResponse {
  status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: string;
}

export interface RawRequest {
  method: string;
  /** Sent byte for byte as the request target: no URL parsing, no normalisation. */
  target: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  timeoutMs?: number;
  /** Sent as `Authorization: Bearer <token>`. */
  bearer?: string;
}

/** Sends one HTTP/1.1 request over a fresh socket exactly as written and reads the answer until the server closes. */
export function rawRequest(baseUrl: string, request: RawRequest): Promise<RawResponse> {
  const { hostname, port, host } = new URL(baseUrl);
  const lines = [`${request.method} ${request.target} HTTP/1.1`, `Host: ${host}`, "Connection: close"];
  const headers = { ...(request.bearer ? bearer(request.bearer) : {}), ...request.headers };
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  if (request.body !== undefined) lines.push(`Content-Length: ${Buffer.byteLength(request.body)}`);
  const head = `${lines.join("\r\n")}\r\n\r\n`;
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer to ${request.method} ${request.target} within ${request.timeoutMs ?? 10_000} ms`));
    }, request.timeoutMs ?? 10_000);
    socket.on("connect", () => {
      socket.write(head);
      if (request.body !== undefined) socket.write(request.body);
    });
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on("end", () => {
      clearTimeout(timer);
      try {
        resolve(parseResponse(Buffer.concat(chunks)));
      } catch (err) {
        reject(err);
      }
    });
  });
}

function parseResponse(raw: Buffer): RawResponse {
  const split = raw.indexOf("\r\n\r\n");
  if (split === -1) throw new Error(`not an HTTP response: ${JSON.stringify(raw.toString("latin1").slice(0, 200))}`);
  const [statusLine = "", ...headerLines] = raw.subarray(0, split).toString("latin1").split("\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1]);
  if (!Number.isInteger(status)) throw new Error(`bad status line: ${statusLine}`);
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  let body = raw.subarray(split + 4);
  if (headers["transfer-encoding"]?.toLowerCase().includes("chunked")) body = dechunk(body);
  return { status, headers, body: body.toString("utf8") };
}

function dechunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  while (at < data.length) {
    const lineEnd = data.indexOf("\r\n", at);
    if (lineEnd === -1) break;
    const size = Number.parseInt(data.subarray(at, lineEnd).toString("latin1"), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

export interface UploadResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** Bytes handed to the socket before the answer came or the upload finished. */
  sentBytes: number;
  sentSha256: string;
}

export interface UploadOptions {
  method?: string;
  chunkBytes?: number;
  headers?: Record<string, string>;
  /** Declare the length up front instead of sending the body chunked. */
  declareLength?: boolean;
  /** Sent as `Authorization: Bearer <token>`. */
  bearer?: string;
}

/** Streams `body` with node:http in chunks (chunked transfer encoding unless declareLength); stops early once answered. */
export function upload(url: string, body: Buffer, options: UploadOptions = {}): Promise<UploadResult> {
  const chunkBytes = options.chunkBytes ?? 64 * 1024;
  const headers: Record<string, string> = {
    "content-type": "application/octet-stream",
    ...(options.bearer ? bearer(options.bearer) : {}),
    ...options.headers,
  };
  if (options.declareLength) headers["content-length"] = String(body.byteLength);
  return new Promise((resolve, reject) => {
    let sentBytes = 0;
    let answered = false;
    const sentHash = createHash("sha256");
    const req = http.request(url, { method: options.method ?? "POST", headers }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString("utf8"),
          sentBytes,
          sentSha256: sentHash.digest("hex"),
        }),
      );
      res.on("error", reject);
    });
    // A server that answers early may reset the connection while the rest of the body is still being written.
    req.on("error", (err) => {
      if (!answered) reject(err);
    });
    const writeNext = () => {
      while (!answered && sentBytes < body.byteLength) {
        const chunk = body.subarray(sentBytes, sentBytes + chunkBytes);
        sentBytes += chunk.byteLength;
        sentHash.update(chunk);
        if (!req.write(chunk)) {
          req.once("drain", writeNext);
          return;
        }
      }
      if (!answered) req.end();
    };
    writeNext();
  });
}

interface SseEvent {
  id?: string;
  event?: string;
  data: string;
  /** Milliseconds after the request was sent. */
  at: number;
}

export interface SseRead {
  status: number;
  headers: http.IncomingHttpHeaders;
  events: SseEvent[];
  /** Milliseconds after the request was sent when the stream ended. */
  endedAt: number;
}

export interface SseOptions {
  /** Sent as `Authorization: Bearer <token>`. */
  bearer?: string;
}

/** Reads a Server-Sent Events stream to its end, stamping each event with the moment its last byte arrived. */
export function readSse(url: string, headers: Record<string, string> = {}, options: SseOptions = {}): Promise<SseRead> {
  const started = performance.now();
  const since = () => Math.round(performance.now() - started);
  const sent = { accept: "text/event-stream", ...(options.bearer ? bearer(options.bearer) : {}), ...headers };
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: sent }, (res) => {
      const events: SseEvent[] = [];
      let buffer = "";
      res.setEncoding("utf8");
      res.on("data", (text: string) => {
        buffer += text.replace(/\r\n/g, "\n");
        let end: number;
        while ((end = buffer.indexOf("\n\n")) !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event: SseEvent = { data: "", at: since() };
          const data: string[] = [];
          for (const line of block.split("\n")) {
            const colon = line.indexOf(":");
            const field = colon === -1 ? line : line.slice(0, colon);
            const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (field === "data") data.push(value);
            else if (field === "id") event.id = value;
            else if (field === "event") event.event = value;
          }
          event.data = data.join("\n");
          events.push(event);
        }
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, events, endedAt: since() }));
      res.on("error", reject);
    });
    req.on("error", reject);
  });
}
