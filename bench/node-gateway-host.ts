// Child process for benchmarks: the Node gateway design Outpost replaces. Each request's user is looked up with a call
// to BENCH_LOOKUP_URL/auth/v1/user (when set), then the request is proxied to BENCH_ORIGIN_URL over keep-alive.
import http from "node:http";

const originUrl = new URL(process.env.BENCH_ORIGIN_URL ?? "");
const lookupUrl = process.env.BENCH_LOOKUP_URL ? new URL("/auth/v1/user", process.env.BENCH_LOOKUP_URL) : null;
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer", "host", "authorization"]);

function lookup(authorization: string): Promise<{ id: string; email: string } | null> {
  return new Promise((resolve, reject) => {
    const req = http.get(lookupUrl!, { agent, headers: { authorization, apikey: "bench-anon-key" } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        if (res.statusCode !== 200) return resolve(null);
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")) as { id: string; email: string });
        } catch {
          resolve(null);
        }
      });
      res.on("error", reject);
    });
    req.on("error", reject);
  });
}

const server = http.createServer(async (req, res) => {
  try {
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(req.headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
    if (lookupUrl) {
      const user = await lookup(req.headers.authorization ?? "");
      if (!user) {
        req.resume();
        res.writeHead(401, { "content-type": "application/json" }).end('{"error":"unauthorized"}');
        return;
      }
      headers["x-user-id"] = user.id;
      headers["x-user-email"] = user.email;
    }
    const upstream = http.request({ host: originUrl.hostname, port: originUrl.port, method: req.method, path: req.url, headers, agent }, (up) => {
      const out: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(up.headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
      res.writeHead(up.statusCode ?? 502, out);
      up.pipe(res);
    });
    upstream.on("error", () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    req.pipe(upstream);
  } catch {
    if (!res.headersSent) res.writeHead(502).end();
  }
});
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => {
  const { port } = server.address() as { port: number };
  console.log(`node gateway listening on http://127.0.0.1:${port}`);
});

process.stdin.resume();
process.stdin.once("end", () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
