// A small HTTP/1.1 client on node:http(s). The CLI avoids the global fetch: loading it costs ~13 MB of RSS, which
// matters for `outpost run`, a process that sits next to every agent for hours.
import type { IncomingMessage, RequestOptions as NodeRequestOptions } from "node:http";

export interface HttpResponse {
  status: number;
  statusText: string;
  ok: boolean;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
  json(): Promise<unknown>;
  /** Discards the body. */
  cancel(): void;
}

export interface HttpRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  timeoutMs: number;
}

/** An error like fetch's: `cause.code` carries ECONNREFUSED and friends; timeouts are named TimeoutError. */
class RequestError extends Error {
  constructor(message: string, cause?: unknown, name = "RequestError") {
    super(message, cause === undefined ? undefined : { cause });
    this.name = name;
  }
}

/**
 * Idle connections are kept this long (Node's default agent drops them after 5 s), so heartbeats every 10-60 s reuse
 * one connection instead of paying a TCP and TLS handshake each time.
 */
const IDLE_SOCKET_MS = 90_000;
const agents = new Map<string, import("node:http").Agent>();

function moduleFor(secure: boolean) {
  // getBuiltinModule, not `import`: an ES import of node:http builds its namespace, whose lazy getters load undici,
  // http2, tls and zlib (~10 MB). TLS loads only for https edges.
  return secure ? process.getBuiltinModule("node:https") : process.getBuiltinModule("node:http");
}

function agentFor(secure: boolean): import("node:http").Agent {
  const key = secure ? "https" : "http";
  let agent = agents.get(key);
  if (!agent) {
    agent = new (moduleFor(secure).Agent)({ keepAlive: true, timeout: IDLE_SOCKET_MS, maxSockets: 4, maxFreeSockets: 1 });
    agents.set(key, agent);
  }
  return agent;
}

export async function request(url: URL, req: HttpRequest): Promise<HttpResponse> {
  try {
    return await attempt(url, req);
  } catch (err) {
    // The server closed a kept-alive connection just as it was reused: that is not an outage, try once more.
    if (err instanceof RequestError && (err as RequestError & { reusedSocket?: boolean }).reusedSocket) return attempt(url, req);
    throw err;
  }
}

function attempt(url: URL, req: HttpRequest): Promise<HttpResponse> {
  const secure = url.protocol === "https:";
  if (!secure && url.protocol !== "http:") return Promise.reject(new RequestError(`unsupported protocol ${url.protocol}`));
  const mod = moduleFor(secure);
  const headers: Record<string, string> = { ...req.headers };
  if (req.body !== undefined) headers["content-length"] = String(Buffer.byteLength(req.body));
  const options: NodeRequestOptions = { method: req.method ?? "GET", headers, agent: agentFor(secure) };
  return new Promise<HttpResponse>((resolve, reject) => {
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      reject(err);
    };
    const r = mod.request(url, options, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      const body = new Promise<string>((ok, bad) => {
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => ok(Buffer.concat(chunks).toString("utf8")));
        res.on("error", bad);
        res.on("aborted", () => bad(new RequestError("the response was cut off")));
      });
      body.catch(() => {});
      settled = true;
      clearTimeout(timer);
      const status = res.statusCode ?? 0;
      resolve({
        status,
        statusText: res.statusMessage ?? "",
        ok: status >= 200 && status < 300,
        headers: {
          get(name) {
            const v = res.headers[name.toLowerCase()];
            return v === undefined ? null : Array.isArray(v) ? v.join(", ") : v;
          },
        },
        text: () => body,
        json: async () => JSON.parse(await body) as unknown,
        cancel: () => {
          res.resume();
        },
      });
    });
    const timer = setTimeout(() => {
      fail(new RequestError(`no answer within ${req.timeoutMs} ms`, undefined, "TimeoutError"));
      r.destroy();
    }, req.timeoutMs);
    r.on("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const error = new RequestError(err.message, err);
      if (r.reusedSocket && (err.code === "ECONNRESET" || err.code === "EPIPE")) Object.assign(error, { reusedSocket: true });
      fail(error);
    });
    r.end(req.body);
  });
}
