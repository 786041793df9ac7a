// X-Request-Id on every response (kept when well-formed, replaced otherwise) and the one JSON log line per request.
import { afterEach, describe, expect, it, vi } from "vitest";
import { call, live, type Echo } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe("X-Request-Id", () => {
  const responses: [string, string, RequestInit, Partial<Env>, number][] = [
    ["/health", "/health", {}, {}, 200],
    ["a preflight", "/api/echo/x", { method: "OPTIONS", headers: { origin: "http://localhost:5173", "access-control-request-method": "POST" } }, {}, 204],
    ["a 404", "/auth/whatever", {}, {}, 404],
    ["a 405", "/api/echo/x", { method: "TRACE" }, {}, 405],
    ["a 502", "/api/echo/x", {}, {}, 502],
    ["a 503", "/api/echo/x", {}, { ORIGIN_URL: "" }, 503],
    ["a proxied 200", "/api/echo/x", {}, live(), 200],
  ];

  it.each(responses)("is generated on %s", async (_name, path, init, overrides, status) => {
    const res = await call(path, init, overrides);
    expect(res.status).toBe(status);
    expect(res.headers.get("x-request-id")).toMatch(UUID);
  });

  it("is unique per request", async () => {
    const ids = new Set<string | null>();
    for (let i = 0; i < 5; i++) ids.add((await call("/health")).headers.get("x-request-id"));
    expect(ids.size).toBe(5);
  });

  const wellFormed = ["abc", "A", "7", "req-1.2_3:4", "0".repeat(128), `x${"-._:".repeat(31)}abc`];
  it.each(wellFormed)("keeps a well-formed client id %j and forwards it to the origin", async (id) => {
    const res = await call("/api/echo/id", { headers: { "x-request-id": id } }, live());
    expect(res.headers.get("x-request-id")).toBe(id);
    expect((await res.json<Echo>()).headers["x-request-id"]).toBe(id);
  });

  const malformed = [
    ["with spaces", "has spaces in it"],
    ["200 characters", "a".repeat(200)],
    ["129 characters", "a".repeat(129)],
    ["leading dash", "-abc"],
    ["leading dot", ".abc"],
    ["slash", "a/b"],
    ["quote", 'a"b'],
    ["unicode", "abcé"],
    ["comma (two ids)", "abc,def"],
  ];
  it.each(malformed)("replaces a malformed client id (%s) with a generated one, also at the origin", async (_name, id) => {
    const res = await call("/api/echo/id", { headers: { "x-request-id": id } }, live());
    const replaced = res.headers.get("x-request-id");
    expect(replaced).toMatch(UUID);
    expect((await res.json<Echo>()).headers["x-request-id"]).toBe(replaced);
  });
});

describe("request log line", () => {
  function logLines(spy: { mock: { calls: unknown[][] } }) {
    return spy.mock.calls
      .map((args) => String(args[0]))
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  it("writes exactly one JSON line with method, path, status, durationMs and requestId", async () => {
    const spy = vi.spyOn(console, "log").mockImplementation(() => {});
    const res = await call("/api/echo/logged", { method: "POST", body: "x" }, live());
    expect(res.status).toBe(200);
    const lines = logLines(spy);
    expect(lines).toHaveLength(1);
    const [line] = lines;
    expect(line).toMatchObject({ method: "POST", path: "/api/echo/logged", status: 200, requestId: res.headers.get("x-request-id") });
    expect(typeof line?.durationMs).toBe("number");
    expect(line?.durationMs as number).toBeGreaterThanOrEqual(0);
  });

  it("never logs the query string or an Authorization value", async () => {
    const spy = vi.spyOn(console, "log").mockImplementation(() => {});
    await call(
      "/api/echo/x?ticket=single-use-ticket-123&token=qs-secret",
      { headers: { authorization: "Bearer sekrit-bearer-value", cookie: "sid=cookie-secret" } },
      live(),
    );
    await call("/auth/login?code=oauth-code-456", { headers: { authorization: "Basic c2VrcmV0" } });
    const lines = logLines(spy);
    expect(lines.map((l) => l.path)).toEqual(["/api/echo/x", "/auth/login"]);
    const all = JSON.stringify(spy.mock.calls);
    for (const secret of ["single-use-ticket-123", "qs-secret", "sekrit-bearer-value", "c2VrcmV0", "oauth-code-456", "cookie-secret", "?"]) {
      expect(all).not.toContain(secret);
    }
  });

  it("logs the status and a setting name (not its value) for a refused request", async () => {
    const spy = vi.spyOn(console, "log").mockImplementation(() => {});
    await call("/api/echo/x", undefined, { MAX_BODY_BYTES: "secret-looking-value" });
    const [line] = logLines(spy);
    expect(line).toMatchObject({ status: 503, path: "/api/echo/x" });
    expect(String(line?.detail)).toContain("MAX_BODY_BYTES");
    expect(JSON.stringify(spy.mock.calls)).not.toContain("secret-looking-value");
  });

  it("logs guard refusals with their status", async () => {
    const spy = vi.spyOn(console, "log").mockImplementation(() => {});
    await call("/api/echo/%2e%2e%2fadmin");
    await call("/api/echo/x", { method: "TRACE" });
    expect(logLines(spy).map((l) => [l.method, l.status])).toEqual([
      ["GET", 400],
      ["TRACE", 405],
    ]);
  });
});
