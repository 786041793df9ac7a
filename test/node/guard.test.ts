// The guard over raw sockets: TRACE/CONNECT refused, encoded traversal is 400 BAD_PATH, and the origin receives nothing.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { rawRequest, type RawRequest } from "../support/http-client.ts";
import { OWNER } from "../support/identity.ts";
import { startStack, type Stack } from "../support/stack.ts";
import { startUpstream, type Upstream } from "../support/upstream.ts";

interface ErrorBody {
  error: { code: string; message: string; requestId: string };
}

let upstream: Upstream;
let stack: Stack;
let token: string;

beforeAll(async () => {
  upstream = await startUpstream();
  stack = await startStack({ originUrl: upstream.url });
  token = await stack.mintToken(OWNER);
});

/**
 * Every request here carries the owner's token: a refusal must come from the guard, not from missing credentials
 * (the proxy would refuse an anonymous request with 401 before the origin saw anything either way).
 */
const send = (request: RawRequest) => rawRequest(stack.edgeUrl, { bearer: token, ...request });

afterAll(async () => {
  await stack?.stop();
  await upstream?.close();
});

beforeEach(() => upstream.reset());

/** Gives anything that did slip through time to land at the upstream before it is checked. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 200));

async function expectNothingReachedOrigin() {
  await settle();
  expect(upstream.requests.map((r) => `${r.method} ${r.target}`)).toEqual([]);
}

describe("forbidden methods (fetch cannot send these, so they go raw)", () => {
  it("TRACE gets 405 METHOD_NOT_ALLOWED with Allow, and is not forwarded", async () => {
    const res = await send({ method: "TRACE", target: "/api/echo/x", headers: { "X-Secret": "s3cret" } });
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
    const body = JSON.parse(res.body) as ErrorBody;
    expect(body).toEqual({ error: { code: "METHOD_NOT_ALLOWED", message: expect.any(String), requestId: res.headers["x-request-id"] } });
    // TRACE would echo the request back, headers included; nothing of it may come back.
    expect(res.body).not.toContain("s3cret");
    expect(res.body).not.toContain(token);
    await expectNothingReachedOrigin();
  });

  it("TRACK, which the runtime does not parse as a method, is refused and not forwarded", async () => {
    const res = await send({ method: "TRACK", target: "/api/echo/x" });
    expect(res.status).toBeGreaterThanOrEqual(400);
    await expectNothingReachedOrigin();
  });

  it("CONNECT to the origin's own address opens no tunnel and reaches nothing", async () => {
    const target = new URL(upstream.url).host;
    const res = await send({ method: "CONNECT", target, headers: { Host: target } });
    expect(res.status).toBeGreaterThanOrEqual(400);
    await expectNothingReachedOrigin();
    expect(upstream.connections()).toBe(0);
  });

  // LOCAL RUNTIME GAP: workerd hands CONNECT to a Worker's `connect` handler, never to `fetch`, so the guard's CONNECT
  // rule is unreachable and the runtime itself answers "500 Internal Server Error" (plain text, no X-Request-Id).
  // Safe (nothing is tunnelled or forwarded) but not the documented 405. Remove `.fails` if that changes.
  it.fails("CONNECT gets the guard's 405 METHOD_NOT_ALLOWED", async () => {
    const res = await send({ method: "CONNECT", target: "/api/echo/x" });
    expect(res.status).toBe(405);
  });
});

describe("encoded separators and traversal (sent raw: fetch and URL would normalise them)", () => {
  it.each([
    "/api/a%2fb",
    "/api/a%5cb",
    "/api/..%5c..%5cetc/passwd",
    "/api/a%00b",
    "/api/a%0d%0aSet-Cookie:x",
    "/api/%252e%252e/x",
    "/api/a%252fb",
    "/api/x%2e%2e/y",
    "/api/x/.%2e./y",
  ])("%s gets 400 BAD_PATH and is not forwarded", async (target) => {
    const res = await send({ method: "GET", target });
    expect(res.status).toBe(400);
    const body = JSON.parse(res.body) as ErrorBody;
    expect(body).toEqual({ error: { code: "BAD_PATH", message: expect.any(String), requestId: res.headers["x-request-id"] } });
    await expectNothingReachedOrigin();
  });

  it("a bad path is refused before the body is forwarded, also for POST", async () => {
    const res = await send({ method: "POST", target: "/api/a%2fb", body: '{"x":1}' });
    expect(res.status).toBe(400);
    await expectNothingReachedOrigin();
  });

  // The runtime resolves whole "%2e%2e" / ".." segments (as WHATWG URL parsing does) before the Worker runs, so
  // these never look encoded to the guard; what matters is that nothing outside /api reaches the origin.
  it.each(["/api/%2e%2e/x", "/api/%2E%2E/%2e%2e/health-check", "/api/../../etc/passwd"])(
    "%s resolves out of /api at the edge and never reaches the origin",
    async (target) => {
      const res = await send({ method: "GET", target });
      expect([200, 400, 404]).toContain(res.status);
      if (res.status === 400) expect((JSON.parse(res.body) as ErrorBody).error.code).toBe("BAD_PATH");
      await expectNothingReachedOrigin();
    },
  );

  it("dot segments inside /api are resolved before forwarding: the origin never sees '..' or '%2e'", async () => {
    const res = await send({ method: "GET", target: "/api/a/%2e%2e/b?q=1" });
    await settle();
    if (res.status === 400) {
      expect(upstream.requests).toHaveLength(0);
      return;
    }
    expect(res.status).toBe(200);
    expect(upstream.requests.map((r) => r.target)).toEqual(["/api/b?q=1"]);
  });

  it("an ordinary encoded character (%20) is still proxied unchanged", async () => {
    const res = await send({ method: "GET", target: "/api/files/my%20notes.txt" });
    expect(res.status).toBe(200);
    expect(upstream.requests.map((r) => r.target)).toEqual(["/api/files/my%20notes.txt"]);
  });
});
