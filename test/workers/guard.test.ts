// The guard: forbidden methods, encoded path tricks and oversized or malformed Content-Length, all before routing.
import { env } from "cloudflare:test";
import type { Context } from "hono";
import { afterEach, describe, expect, it, vi } from "vitest";
import { OutpostError } from "../../shared/errors.ts";
import { guard } from "../../worker/middleware/guard.ts";
import type { AppEnv } from "../../worker/types.ts";
import { call, expectError, live, spyOrigin, type Echo } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

describe("methods", () => {
  it.each(["/api/echo/x", "/auth/x", "/health", "/"])("TRACE %s → 405 without reaching the origin", async (path) => {
    const fetchSpy = spyOrigin();
    const res = await call(path, { method: "TRACE" }, live());
    await expectError(res, 405, "METHOD_NOT_ALLOWED");
    expect(fetchSpy).not.toHaveBeenCalled();
  });

  // workerd's Request constructor rejects TRACK and CONNECT, so no test can send them through worker.fetch;
  // the Node end-to-end tests send them over raw sockets. Here the guard itself is run with a minimal context.
  it("workerd cannot construct TRACK or CONNECT requests", () => {
    expect(() => new Request("https://outpost.example.com/", { method: "TRACK" })).toThrow(TypeError);
    expect(() => new Request("https://outpost.example.com/", { method: "CONNECT" })).toThrow(TypeError);
  });

  function fakeContext(method: string): Context<AppEnv> {
    const headers = new Headers();
    return {
      env,
      req: { method, url: "https://outpost.example.com/api/echo/x", header: (name: string) => headers.get(name) ?? undefined },
    } as unknown as Context<AppEnv>;
  }

  it.each(["TRACK", "track", "CONNECT", "TRACE"])("the guard refuses %s with 405 before calling next", async (method) => {
    const next = vi.fn(async () => {});
    const err = await guard()(fakeContext(method), next).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(OutpostError);
    expect((err as OutpostError).code).toBe("METHOD_NOT_ALLOWED");
    expect((err as OutpostError).status).toBe(405);
    expect(next).not.toHaveBeenCalled();
  });

  it.each(["GET", "POST", "PATCH", "OPTIONS", "PROPFIND"])("the guard lets %s through", async (method) => {
    const next = vi.fn(async () => {});
    await guard()(fakeContext(method), next);
    expect(next).toHaveBeenCalledTimes(1);
  });
});

describe("encoded paths", () => {
  const BAD = [
    "/api/echo/%2e%2e%2fsecret",
    "/api/echo/a%2E%2E",
    "/api/echo/..%2f..%2fetc%2fpasswd",
    "/api/echo/a%2Fb",
    "/api/echo/a%5cb",
    "/api/echo/..%5C..%5Cwin.ini",
    "/api/echo/a%00.json",
    "/api/echo/%252e%252e/x",
    "/api/echo/%252f",
    "/api/echo/%25",
    "/api/echo/line%0abreak",
    "/api/echo/cr%0D",
    "/api/echo/tab%09",
    "/api/echo/esc%1b",
    "/api/echo/del%7f",
    "/api/echo/file%2ejson",
    // ";" starts path parameters to Tomcat-style servers: "..%3B" can decode there to a dot segment, out of the prefix.
    "/api/echo/..%3B/admin",
    "/api/echo/a%3bb",
    "/api/echo/a%3Bjsessionid=1",
  ];

  it.each(BAD)("%s → 400 BAD_PATH and nothing reaches the origin", async (path) => {
    const fetchSpy = spyOrigin();
    const res = await call(path, undefined, live());
    await expectError(res, 400, "BAD_PATH");
    expect(fetchSpy).not.toHaveBeenCalled();
  });

  it.each(["/auth/%2e%2e%2fadmin", "/health%00", "/%5c%5cevil", "/socket.io/%252e%252e/", "/unknown/a%2fb"])(
    "%s (not a plain proxied path) → 400 BAD_PATH, not 404 or 200",
    async (path) => {
      const fetchSpy = spyOrigin();
      const res = await call(path, { method: "POST", body: "x" }, live());
      await expectError(res, 400, "BAD_PATH");
      expect(fetchSpy).not.toHaveBeenCalled();
    },
  );

  it("a dot-segment spelled %2e%2e is resolved by the URL parser first and cannot stay under /api", async () => {
    const fetchSpy = spyOrigin();
    const req = new Request("https://outpost.example.com/api/%2e%2e/admin");
    expect(new URL(req.url).pathname).toBe("/admin");
    await expectError(await call(req, undefined, live()), 404, "NOT_FOUND");
    expect(fetchSpy).not.toHaveBeenCalled();
  });

  it("allows encoded separators in the query string and ordinary escapes in the path", async () => {
    const res = await call("/api/echo/caf%C3%A9/a%20b?next=%2Fhome%2F..%2F&x=%00&y=%3B", undefined, live());
    expect(res.status).toBe(200);
    const echo = await res.json<Echo>();
    expect(echo.path).toBe("/api/echo/caf%C3%A9/a%20b");
    expect(echo.query).toBe("?next=%2Fhome%2F..%2F&x=%00&y=%3B");
  });
});

describe("Content-Length", () => {
  it.each(["1025", "2048", "99999999999999999999999"])("%s over MAX_BODY_BYTES (1024) → 413 before the origin", async (length) => {
    const fetchSpy = spyOrigin();
    const res = await call("/api/echo/upload", { method: "POST", headers: { "content-length": length } }, live());
    await expectError(res, 413, "PAYLOAD_TOO_LARGE");
    expect(fetchSpy).not.toHaveBeenCalled();
  });

  it("413 also applies to paths that are not proxied, and follows MAX_BODY_BYTES", async () => {
    await expectError(await call("/auth/login", { method: "POST", headers: { "content-length": "2000" } }), 413, "PAYLOAD_TOO_LARGE");
    const small = { MAX_BODY_BYTES: "10" };
    await expectError(
      await call("/api/echo/x", { method: "POST", body: "x".repeat(11), headers: { "content-length": "11" } }, small),
      413,
      "PAYLOAD_TOO_LARGE",
    );
  });

  it("exactly MAX_BODY_BYTES is forwarded whole", async () => {
    const body = "y".repeat(1024);
    const res = await call("/api/echo/upload", { method: "POST", body, headers: { "content-length": "1024" } }, live());
    expect(res.status).toBe(200);
    const echo = await res.json<Echo>();
    expect(echo.bodyBytes).toBe(1024);
    expect(echo.body).toBe(body);
  });

  it.each(["abc", "-1", "1.5", "1e3", "0x10", "12abc", "10, 10"])("non-numeric %j → 400 BAD_REQUEST before the origin", async (length) => {
    const fetchSpy = spyOrigin();
    const res = await call("/api/echo/upload", { method: "POST", headers: { "content-length": length } }, live());
    await expectError(res, 400, "BAD_REQUEST");
    expect(fetchSpy).not.toHaveBeenCalled();
  });
});
