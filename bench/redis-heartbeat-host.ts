// Child process for benchmarks: the presence design Outpost replaces. A Node HTTP server takes
// POST /api/heartbeat/:id, checks the caller with a call to BENCH_LOOKUP_URL/auth/v1/user, then stores the heartbeat
// with `SET presence:<user>:<id> <body> EX <ttl>` on Redis (BENCH_REDIS_PORT); expiry is left to Redis.
import http from "node:http";
import { RespClient } from "./resp.ts";

const lookupUrl = new URL("/auth/v1/user", process.env.BENCH_LOOKUP_URL ?? "");
const ttl = Number(process.env.BENCH_TTL_SECONDS ?? "15");
const redis = await RespClient.connect(Number(process.env.BENCH_REDIS_PORT));
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const ROUTE = /^\/api\/heartbeat\/([A-Za-z0-9._:-]{1,128})$/;
const CAP = 8 * 1024;

function lookup(authorization: string): Promise<{ id: string } | null> {
  return new Promise((resolve, reject) => {
    const req = http.get(lookupUrl, { agent, headers: { authorization, apikey: "bench-anon-key" } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        if (res.statusCode !== 200) return resolve(null);
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")) as { id: string });
        } catch {
          resolve(null);
        }
      });
      res.on("error", reject);
    });
    req.on("error", reject);
  });
}

function readBody(req: http.IncomingMessage): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size <= CAP) chunks.push(c);
    });
    req.on("end", () => resolve(size > CAP ? null : Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

const json = (res: http.ServerResponse, status: number, body: unknown) => {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) }).end(text);
};

const server = http.createServer(async (req, res) => {
  try {
    const match = ROUTE.exec(req.url ?? "");
    if (req.method !== "POST" || !match) {
      req.resume();
      return json(res, 404, { error: "not found" });
    }
    const [body, user] = await Promise.all([readBody(req), lookup(req.headers.authorization ?? "")]);
    if (!user) return json(res, 401, { error: "unauthorized" });
    if (body === null) return json(res, 413, { error: "too large" });
    const reply = await redis.command("SET", `presence:${user.id}:${match[1]}`, body || "{}", "EX", ttl);
    if (reply !== "OK") return json(res, 500, { error: "redis" });
    json(res, 200, { status: "accepted", ttl });
  } catch {
    if (!res.headersSent) json(res, 500, { error: "internal" });
  }
});
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => {
  const { port } = server.address() as { port: number };
  console.log(`redis heartbeat server listening on http://127.0.0.1:${port}`);
});

process.stdin.resume();
process.stdin.once("end", () => {
  redis.close();
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
