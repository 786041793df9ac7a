// The single JSON error shape for every error the edge produces, no leaks, and no 5xx for client mistakes.
import { Hono } from "hono";
import { afterEach, describe, expect, it, vi } from "vitest";
import { errorBody, OutpostError } from "../../shared/errors.ts";
import { errorResponse } from "../../worker/errors.ts";
import { requestLog } from "../../worker/middleware/request-log.ts";
import type { AppEnv } from "../../worker/types.ts";
import { call, expectError, live, spyOrigin } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

/** Rejects when the Worker aborts the origin call, like an origin that never answers. */
function hangUntilAborted(_input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  return new Promise((_resolve, reject) => {
    const signal = init?.signal;
    signal?.addEventListener("abort", () => reject(signal.reason));
  });
}

type Case = [code: string, status: number, path: string, init: RequestInit, overrides: Partial<Env>];
const CASES: Case[] = [
  ["BAD_REQUEST", 400, "/api/echo/x", { method: "POST", headers: { "content-length": "abc" } }, {}],
  ["BAD_PATH", 400, "/api/echo/a%2fb", {}, {}],
  ["NOT_FOUND", 404, "/auth/whatever", {}, {}],
  ["METHOD_NOT_ALLOWED", 405, "/api/echo/x", { method: "TRACE" }, {}],
  ["FORBIDDEN_ORIGIN", 403, "/socket.io/", { headers: { upgrade: "websocket", origin: "https://evil.example" } }, {}],
  ["PAYLOAD_TOO_LARGE", 413, "/api/echo/x", { method: "POST", headers: { "content-length": "2048" } }, {}],
  ["CONFIG_INVALID", 503, "/api/echo/x", {}, { ORIGIN_URL: "" }],
  ["ORIGIN_UNREACHABLE", 502, "/api/echo/x", {}, {}],
];

describe("error shape", () => {
  it.each(CASES)("%s (%i) uses {error:{code,message,requestId}} with requestId = X-Request-Id", async (code, status, path, init, overrides) => {
    const res = await call(path, init, overrides);
    const body = await expectError(res, status, code);
    expect(JSON.stringify(body)).not.toMatch(/\bat .+:\d+:\d+|Error:|stack|node_modules|\.ts\b/);
  });

  it.each(CASES)("%s keeps a well-formed client X-Request-Id in the body and header", async (code, status, path, init, overrides) => {
    const headers = new Headers(init.headers);
    headers.set("x-request-id", `client-${code.toLowerCase()}`);
    const res = await call(path, { ...init, headers }, overrides);
    const body = await expectError(res, status, code);
    expect(body.error.requestId).toBe(`client-${code.toLowerCase()}`);
  });

  it("ORIGIN_TIMEOUT (504) when the origin does not answer within ORIGIN_TIMEOUT_MS", async () => {
    spyOrigin().mockImplementation(hangUntilAborted);
    const started = Date.now();
    const res = await call("/api/echo/slow", undefined, { ORIGIN_TIMEOUT_MS: "100" });
    await expectError(res, 504, "ORIGIN_TIMEOUT");
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("405 carries an Allow header without the forbidden method", async () => {
    const res = await call("/api/echo/x", { method: "TRACE" });
    await expectError(res, 405, "METHOD_NOT_ALLOWED");
    const allow = res.headers.get("allow") ?? "";
    expect(allow).toContain("GET");
    expect(allow).not.toMatch(/TRACE|TRACK|CONNECT/);
  });
});

describe("client mistakes are never 5xx, even with the origin down", () => {
  const mistakes: [string, string, RequestInit][] = [
    ["encoded traversal", "/api/echo/..%2f..%2fetc", {}],
    ["NUL byte", "/api/echo/a%00", {}],
    ["double encoding", "/api/echo/%252e%252e", {}],
    ["TRACE", "/api/echo/x", { method: "TRACE" }],
    ["non-numeric Content-Length", "/api/echo/x", { method: "POST", headers: { "content-length": "12abc" } }],
    ["negative Content-Length", "/api/echo/x", { method: "POST", headers: { "content-length": "-1" } }],
    ["huge Content-Length", "/api/echo/x", { method: "PUT", headers: { "content-length": "999999999999999999999999" } }],
    ["unknown route", "/nope/at/all", {}],
    ["WebSocket from a foreign origin", "/api/ws/echo", { headers: { upgrade: "websocket", origin: "null" } }],
  ];

  it.each(mistakes)("%s → 4xx with the error shape", async (_name, path, init) => {
    const fetchSpy = spyOrigin();
    const res = await call(path, init);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    const body = await res.json<{ error: { requestId: string } }>();
    expect(body.error.requestId).toBe(res.headers.get("x-request-id"));
    expect(fetchSpy).not.toHaveBeenCalled();
  });

  it("a client mistake is answered even while the origin is healthy, without reaching it", async () => {
    const fetchSpy = spyOrigin();
    const res = await call("/api/echo/%5c..", undefined, live());
    await expectError(res, 400, "BAD_PATH");
    expect(fetchSpy).not.toHaveBeenCalled();
  });
});

describe("errorResponse", () => {
  function appThrowing(err: unknown) {
    const app = new Hono<AppEnv>();
    app.use(requestLog({ sink: () => {} }));
    app.get("/boom", () => {
      throw err;
    });
    app.onError((e, c) => errorResponse(c, e));
    return app;
  }

  it("turns an unexpected exception into a generic 500 INTERNAL without its message", async () => {
    const res = await appThrowing(new Error("db password is hunter2")).request("/boom");
    const body = await expectError(res, 500, "INTERNAL");
    expect(JSON.stringify(body)).not.toContain("hunter2");
    expect(body.error.message).toBe("Internal error.");
  });

  it("renders an OutpostError with its status, safe message and extra headers, but not its detail", async () => {
    const err = new OutpostError("ORIGIN_TIMEOUT", "Too slow.", { detail: "internal-host:4242", headers: { "Retry-After": "3" } });
    const res = await appThrowing(err).request("/boom");
    const body = await expectError(res, 504, "ORIGIN_TIMEOUT");
    expect(body.error.message).toBe("Too slow.");
    expect(res.headers.get("retry-after")).toBe("3");
    expect(JSON.stringify(body)).not.toContain("internal-host");
  });

  it("errorBody builds exactly the documented shape", () => {
    expect(errorBody("NOT_FOUND", "No such route.", "req-1")).toStrictEqual({
      error: { code: "NOT_FOUND", message: "No such route.", requestId: "req-1" },
    });
  });
});
