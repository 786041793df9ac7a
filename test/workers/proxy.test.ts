// The proxy's request side: which paths go to the origin, intact method/path/query/body, and header hygiene.
import { afterEach, describe, expect, inject, it, vi } from "vitest";
import { call, expectError, live, sentToOrigin, sha256Hex, spyOrigin, type Echo } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

async function echo(path: string, init?: RequestInit, overrides: Partial<Env> = {}): Promise<{ res: Response; echo: Echo }> {
  const res = await call(path, init, live(overrides));
  expect(res.status).toBe(200);
  return { res, echo: await res.json<Echo>() };
}

describe("what reaches the origin", () => {
  it.each(["GET", "DELETE", "HEAD"])("%s keeps its method, path and query", async (method) => {
    const fetchSpy = spyOrigin();
    const res = await call("/api/echo/a/b.json?x=1&x=2&sp=%20a+b&empty=&flag", { method }, live());
    expect(res.status).toBe(200);
    const sent = sentToOrigin(fetchSpy);
    expect(sent.method).toBe(method);
    expect(sent.url).toBe(new URL("/api/echo/a/b.json?x=1&x=2&sp=%20a+b&empty=&flag", inject("originUrl")).href);
    if (method === "HEAD") return;
    const body = await res.json<Echo>();
    expect(body).toMatchObject({ method, path: "/api/echo/a/b.json", query: "?x=1&x=2&sp=%20a+b&empty=&flag", bodyBytes: 0 });
  });

  it.each(["POST", "PUT", "PATCH", "DELETE"])("%s keeps its body and content type", async (method) => {
    const payload = JSON.stringify({ method, text: "héllo ✓", n: [1, 2, 3] });
    const { echo: body } = await echo("/api/echo/items/7?v=2", { method, body: payload, headers: { "content-type": "application/json" } });
    expect(body.method).toBe(method);
    expect(body.path).toBe("/api/echo/items/7");
    expect(body.query).toBe("?v=2");
    expect(body.body).toBe(payload);
    expect(body.bodyBytes).toBe(new TextEncoder().encode(payload).byteLength);
    expect(body.headers["content-type"]).toBe("application/json");
  });

  it("keeps binary bodies byte for byte", async () => {
    const bytes = new Uint8Array(1000).map((_, i) => (i * 37) % 256);
    const { echo: body } = await echo("/api/echo/bin", { method: "POST", body: bytes, headers: { "content-type": "application/octet-stream" } });
    expect(body.bodyBytes).toBe(1000);
    expect(body.bodySha256).toBe(await sha256Hex(bytes));
  });

  it("sends the origin's own Host, not the public one", async () => {
    const { echo: body } = await echo("/api/echo/host");
    expect(body.headers.host).toBe(new URL(inject("originUrl")).host);
  });
});

describe("request headers", () => {
  it("drops hop-by-hop headers and every header named in Connection", async () => {
    const fetchSpy = spyOrigin();
    const { echo: body } = await echo("/api/echo/hop", {
      headers: {
        connection: "keep-alive, X-Hop-A,x-hop-b",
        "keep-alive": "timeout=5",
        te: "trailers",
        trailer: "x-checksum",
        upgrade: "h2c",
        "proxy-authorization": "Basic cHJveHk6c2VjcmV0",
        "proxy-connection": "keep-alive",
        "x-hop-a": "1",
        "x-hop-b": "2",
        "x-keep-me": "yes",
      },
    });
    const dropped = ["connection", "keep-alive", "te", "trailer", "upgrade", "proxy-authorization", "proxy-connection", "x-hop-a", "x-hop-b"];
    const sent = sentToOrigin(fetchSpy).headers;
    for (const name of dropped) {
      expect(sent.has(name), `sent ${name}`).toBe(false);
      expect(body.headers[name], `origin saw ${name}`).toBeUndefined();
    }
    expect(body.headers["x-keep-me"]).toBe("yes");
    // The client's credentials stop at the edge; the origin gets the edge's signed assertion instead.
    expect(body.headers.authorization).toBeUndefined();
    expect(body.headers["outpost-assertion"]).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
  });

  it("drops any proxy-* header", async () => {
    const fetchSpy = spyOrigin();
    await echo("/api/echo/proxy", { headers: { "proxy-foo": "1", "Proxy-Status": "x" } });
    const sent = sentToOrigin(fetchSpy).headers;
    expect(sent.has("proxy-foo")).toBe(false);
    expect(sent.has("proxy-status")).toBe(false);
  });

  it("removes client-sent forwarding and identity headers and sets its own", async () => {
    const fetchSpy = spyOrigin();
    const { res, echo: body } = await echo("/api/echo/forged", {
      headers: {
        "x-forwarded-for": "6.6.6.6",
        "x-forwarded-proto": "http",
        "x-forwarded-host": "evil.example",
        "x-forwarded-port": "1",
        "x-real-ip": "6.6.6.6",
        forwarded: "for=6.6.6.6;proto=http",
        "x-outpost-user": "admin",
        "X-Outpost-Assertion": "forged.jwt.value",
        "outpost-role": "owner",
        "x-request-id": "bad id with spaces",
      },
    });
    const sent = sentToOrigin(fetchSpy).headers;
    for (const name of ["x-forwarded-port", "x-real-ip", "forwarded", "x-outpost-user", "x-outpost-assertion", "outpost-role"]) {
      expect(sent.has(name), `sent ${name}`).toBe(false);
      expect(body.headers[name], `origin saw ${name}`).toBeUndefined();
    }
    expect(body.headers["x-forwarded-for"]).toBe("127.0.0.1");
    expect(body.headers["x-forwarded-proto"]).toBe("https");
    expect(body.headers["x-forwarded-host"]).toBe("outpost.example.com");
    expect(body.headers["x-request-id"]).toBe(res.headers.get("x-request-id"));
    expect(JSON.stringify(body.headers)).not.toContain("6.6.6.6");
  });

  it("takes X-Forwarded-For from CF-Connecting-IP and does not forward cf-* headers", async () => {
    const fetchSpy = spyOrigin();
    const { echo: body } = await echo("/api/echo/ip", { headers: { "cf-connecting-ip": "203.0.113.9", "cf-ray": "abc", "x-forwarded-for": "1.1.1.1" } });
    expect(body.headers["x-forwarded-for"]).toBe("203.0.113.9");
    const sent = sentToOrigin(fetchSpy).headers;
    expect(sent.has("cf-connecting-ip")).toBe(false);
    expect(sent.has("cf-ray")).toBe(false);
  });

  it("X-Forwarded-Proto/Host describe PUBLIC_URL, not the Host the client sent", async () => {
    const res = await call("http://localhost:8787/api/echo/local", undefined, live());
    const body = await res.json<Echo>();
    expect(body.headers["x-forwarded-proto"]).toBe("https");
    expect(body.headers["x-forwarded-host"]).toBe("outpost.example.com");
  });
});

describe("PROXY_PATHS", () => {
  it.each(["/auth/whatever", "/apix", "/app/api/echo/x", "/.well-known/thing", "/"])("%s is not proxied → 404 NOT_FOUND JSON", async (path) => {
    const fetchSpy = spyOrigin();
    await expectError(await call(path, { method: "POST", body: "x" }, live()), 404, "NOT_FOUND");
    expect(fetchSpy).not.toHaveBeenCalled();
  });

  it("/api itself and anything under /api/ or /socket.io/ is proxied", async () => {
    const fetchSpy = spyOrigin().mockImplementation(async () => new Response("from origin"));
    for (const path of ["/api", "/api/", "/api/deep/er", "/socket.io/?EIO=4"]) {
      const res = await call(path);
      expect(await res.text(), path).toBe("from origin");
    }
    expect(fetchSpy.mock.calls.map((_, i) => new URL(sentToOrigin(fetchSpy, i).url).pathname)).toEqual(["/api", "/api/", "/api/deep/er", "/socket.io/"]);
  });

  it('set to "/socket.io/*", /api stops being proxied', async () => {
    const fetchSpy = spyOrigin();
    await expectError(await call("/api/echo/x", undefined, live({ PROXY_PATHS: "/socket.io/*" })), 404, "NOT_FOUND");
    expect(fetchSpy).not.toHaveBeenCalled();
    const res = await call("/socket.io/x", undefined, live({ PROXY_PATHS: "/socket.io/*" }));
    expect(fetchSpy).toHaveBeenCalledTimes(1);
    expect(new URL(sentToOrigin(fetchSpy).url).pathname).toBe("/socket.io/x");
    expect(res.status).toBe(404); // the origin's own 404: it has no /socket.io route
  });

  it("a custom prefix is proxied to the same path at the origin", async () => {
    const res = await call("/api/echo/v", undefined, live({ PROXY_PATHS: "/api/echo/*" }));
    expect((await res.json<Echo>()).path).toBe("/api/echo/v");
    await expectError(await call("/api/other", undefined, live({ PROXY_PATHS: "/api/echo/*" })), 404, "NOT_FOUND");
  });
});
