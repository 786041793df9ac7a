// A test-local stand-in origin on loopback that records exactly what reaches it, and can hang or stall on purpose.
import { createHash } from "node:crypto";
import http from "node:http";
import type { AddressInfo, Server } from "node:net";

export interface ReceivedRequest {
  method: string;
  /** The request target exactly as it arrived on the wire. */
  target: string;
  headers: http.IncomingHttpHeaders;
  /** Body bytes received so far; it grows while a body streams in. */
  bodyBytes: number;
  /** Whether the whole body arrived. */
  complete: boolean;
}

export interface Upstream {
  url: string;
  requests: ReceivedRequest[];
  /** TCP connections accepted since the last reset, whatever came over them. */
  connections(): number;
  /** Body bytes received over all requests. */
  totalBodyBytes(): number;
  reset(): void;
  close(): Promise<void>;
}

/**
 * Routes by path:
 * - `.../hang...`: reads the request, never answers (no status line, no headers).
 * - `.../slow-body?count=N&interval=MS`: sends headers at once, then one line every MS milliseconds.
 * - `.../status/NNN`: answers status NNN with a short text body.
 * - anything else: reads the whole body, then answers 200 JSON {method, target, bodyBytes, bodySha256}.
 */
export async function startUpstream(): Promise<Upstream> {
  const requests: ReceivedRequest[] = [];
  const server = http.createServer((req, res) => {
    const record: ReceivedRequest = {
      method: req.method ?? "",
      target: req.url ?? "",
      headers: req.headers,
      bodyBytes: 0,
      complete: false,
    };
    requests.push(record);
    const hash = createHash("sha256");
    req.on("data", (chunk: Buffer) => {
      record.bodyBytes += chunk.byteLength;
      hash.update(chunk);
    });
    req.on("error", () => {});
    const url = new URL(record.target, "http://upstream.invalid");
    if (url.pathname.includes("/hang")) return;
    const status = /\/status\/(\d{3})$/.exec(url.pathname)?.[1];
    if (status) {
      res.writeHead(Number(status), { "content-type": "text/plain" });
      res.end(`status ${status} from upstream`);
      return;
    }
    if (url.pathname.includes("/slow-body")) {
      const count = Number(url.searchParams.get("count") ?? "3");
      const interval = Number(url.searchParams.get("interval") ?? "500");
      res.writeHead(200, { "content-type": "text/plain", "cache-control": "no-store" });
      res.flushHeaders();
      let sent = 0;
      const tick = () => {
        sent += 1;
        res.write(`line ${sent}\n`);
        if (sent >= count) res.end();
        else setTimeout(tick, interval);
      };
      setTimeout(tick, interval);
      return;
    }
    req.on("end", () => {
      record.complete = true;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          method: record.method,
          target: record.target,
          bodyBytes: record.bodyBytes,
          bodySha256: hash.digest("hex"),
        }),
      );
    });
  });
  let connections = 0;
  server.on("connection", () => void (connections += 1));
  const url = await listen(server);
  return {
    url,
    requests,
    connections: () => connections,
    totalBodyBytes: () => requests.reduce((sum, r) => sum + r.bodyBytes, 0),
    reset: () => {
      requests.splice(0);
      connections = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      resolve(`http://127.0.0.1:${port}`);
    });
  });
}
