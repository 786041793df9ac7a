// Child process for benchmarks: a stand-in for a hosted auth service's user-lookup endpoint (GET /auth/v1/user, as
// Supabase Auth serves it), answering after BENCH_LOOKUP_DELAY_MS. The design Outpost replaces called it per request.
import http from "node:http";

const delayMs = Number(process.env.BENCH_LOOKUP_DELAY_MS ?? "0");
const BEARER = /^Bearer [A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

// Roughly the shape and size of a Supabase user object; the token is not verified (Supabase would verify it and read
// the user row), so this stand-in is cheaper than the real service at any delay.
function user(authorization: string): string {
  const payload = JSON.parse(Buffer.from(authorization.split(".")[1]!, "base64url").toString("utf8")) as { sub?: string; email?: string };
  return JSON.stringify({
    id: payload.sub ?? "00000000-0000-0000-0000-000000000000",
    aud: "authenticated",
    role: "authenticated",
    email: payload.email ?? "",
    email_confirmed_at: "2026-01-01T00:00:00.000Z",
    phone: "",
    confirmed_at: "2026-01-01T00:00:00.000Z",
    last_sign_in_at: "2026-11-01T00:00:00.000Z",
    app_metadata: { provider: "email", providers: ["email"] },
    user_metadata: {},
    identities: [],
    created_at: "2026-01-01T00:00:00.000Z",
    updated_at: "2026-11-01T00:00:00.000Z",
    is_anonymous: false,
  });
}

const server = http.createServer((req, res) => {
  req.resume();
  const authorization = req.headers.authorization ?? "";
  if (req.method !== "GET" || req.url !== "/auth/v1/user") {
    res.writeHead(404).end();
    return;
  }
  if (!BEARER.test(authorization)) {
    res.writeHead(401, { "content-type": "application/json" }).end('{"code":401,"msg":"invalid JWT"}');
    return;
  }
  const answer = () => {
    const body = user(authorization);
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) }).end(body);
  };
  if (delayMs > 0) setTimeout(answer, delayMs);
  else answer();
});
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => {
  const { port } = server.address() as { port: number };
  console.log(`user lookup (${delayMs} ms) listening on http://127.0.0.1:${port}`);
});

process.stdin.resume();
process.stdin.once("end", () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
