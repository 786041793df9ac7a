// Config parsing (parseConfig/getConfig/isProxyPath) and how the Worker behaves when a setting is bad.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { DEV_ORIGINS, getConfig, isProxyPath, parseConfig, type Config } from "../../shared/settings/index.ts";
import { call, expectError, spyOrigin } from "./helpers.ts";

const GOOD = {
  ORIGIN_URL: "http://127.0.0.1:9",
  ALLOW_INSECURE_ORIGIN: "",
  PUBLIC_URL: "",
  CORS_ORIGINS: "",
  MAX_BODY_BYTES: "",
  PROXY_PATHS: "",
  VIEWER_WEBSOCKET_PATHS: "",
  ORIGIN_TIMEOUT_MS: "",
  READY_TIMEOUT_MS: "",
};

function parsed(overrides: Partial<Record<keyof typeof GOOD, string>> = {}): Config {
  const result = parseConfig({ ...GOOD, ...overrides });
  if (!result.ok) throw new Error(`expected a valid config, got ${JSON.stringify(result.problems)}`);
  return result.config;
}

describe("parseConfig: good values", () => {
  it("applies defaults when optional settings are empty", () => {
    const config = parsed();
    expect(config.originUrl.href).toBe("http://127.0.0.1:9/");
    expect(config.publicUrl).toBeNull();
    // No PUBLIC_URL, so nothing says the deployment is local: no development origin either.
    expect([...config.corsOrigins]).toEqual([]);
    expect(config.viewerWebSocketPaths).toEqual([]);
    expect(config.maxBodyBytes).toBe(10 * 1024 * 1024);
    expect(config.originTimeoutMs).toBe(30_000);
    expect(config.readyTimeoutMs).toBe(2_000);
    expect(config.proxyPaths).toEqual(["/api/", "/socket.io/"]);
  });

  it("reads the test bindings from vitest.config.ts", () => {
    const result = getConfig(env);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config.maxBodyBytes).toBe(1024);
    expect(result.config.corsOrigins.has("https://outpost.example.com")).toBe(true);
    expect(result.config.corsOrigins.has("https://extra.example.com")).toBe(true);
  });

  it("adds PUBLIC_URL's origin (not its path) and each CORS_ORIGINS entry to the allowlist", () => {
    const config = parsed({
      PUBLIC_URL: "https://gw.example.com/app/",
      CORS_ORIGINS: " https://a.example.com , http://b.example.com:8080/,https://c.example.com",
    });
    expect(config.publicUrl?.origin).toBe("https://gw.example.com");
    for (const o of ["https://gw.example.com", "https://a.example.com", "http://b.example.com:8080", "https://c.example.com"]) {
      expect(config.corsOrigins.has(o), o).toBe(true);
    }
    expect(config.corsOrigins.has("https://gw.example.com/app/")).toBe(false);
    expect(config.corsOrigins.size).toBe(4);
  });

  it("adds the local development origins only when PUBLIC_URL is itself local", () => {
    for (const local of ["http://localhost:8787", "http://127.0.0.1:8787", "http://[::1]:8787"]) {
      const config = parsed({ PUBLIC_URL: local });
      expect([...config.corsOrigins].sort(), local).toEqual([...new Set([...DEV_ORIGINS, new URL(local).origin])].sort());
    }
    for (const remote of ["https://gw.example.com", "http://localhost.example.com", "http://127.0.0.1.example.com"]) {
      expect([...parsed({ PUBLIC_URL: remote }).corsOrigins], remote).toEqual([new URL(remote).origin]);
    }
  });

  it("reads VIEWER_WEBSOCKET_PATHS like PROXY_PATHS", () => {
    expect(parsed({ VIEWER_WEBSOCKET_PATHS: "/api/ws/events, /live/*" }).viewerWebSocketPaths).toEqual(["/api/ws/events", "/live/"]);
  });

  it("accepts integers at both ends of each range, trimming whitespace", () => {
    expect(parsed({ MAX_BODY_BYTES: "1" }).maxBodyBytes).toBe(1);
    expect(parsed({ MAX_BODY_BYTES: String(100 * 1024 * 1024) }).maxBodyBytes).toBe(100 * 1024 * 1024);
    expect(parsed({ ORIGIN_TIMEOUT_MS: " 100 " }).originTimeoutMs).toBe(100);
    expect(parsed({ ORIGIN_TIMEOUT_MS: "100000" }).originTimeoutMs).toBe(100_000);
    expect(parsed({ READY_TIMEOUT_MS: "100" }).readyTimeoutMs).toBe(100);
    expect(parsed({ READY_TIMEOUT_MS: "30000" }).readyTimeoutMs).toBe(30_000);
  });

  it("turns PROXY_PATHS into prefixes and matches them on segment boundaries", () => {
    const config = parsed({ PROXY_PATHS: "/socket.io/*, /v1/files/*, /exact" });
    expect(config.proxyPaths).toEqual(["/socket.io/", "/v1/files/", "/exact"]);
    expect(isProxyPath(config, "/socket.io/")).toBe(true);
    expect(isProxyPath(config, "/socket.io")).toBe(true);
    expect(isProxyPath(config, "/socket.io/x/y")).toBe(true);
    expect(isProxyPath(config, "/v1/files/a.txt")).toBe(true);
    expect(isProxyPath(config, "/exact")).toBe(true);
    expect(isProxyPath(config, "/exact/more")).toBe(false);
    expect(isProxyPath(config, "/socket.iox")).toBe(false);
    expect(isProxyPath(config, "/v1/filesystem")).toBe(false);
    expect(isProxyPath(config, "/api/echo/x")).toBe(false);
  });
});

// [setting, bad value, a fragment of the value that must never appear in a problem or a response]
const BAD: [keyof typeof GOOD, string, string][] = [
  ["ORIGIN_URL", "", ""],
  ["ORIGIN_URL", "   ", ""],
  ["ORIGIN_URL", "not a url", "not a url"],
  ["ORIGIN_URL", "ftp://secret-host.internal", "secret-host"],
  ["ORIGIN_URL", "127.0.0.1:3000", "3000"],
  ["ORIGIN_URL", "https://user:hunter2@origin.example.com", "hunter2"],
  ["ORIGIN_URL", "https://origin.example.com/?token=s3cr3t", "s3cr3t"],
  ["ORIGIN_URL", "https://origin.example.com/#frag-s3cr3t", "frag-s3cr3t"],
  ["ORIGIN_URL", "http://secret-origin.example.com", "secret-origin"],
  ["ORIGIN_URL", "http://10.1.2.3:8788", "10.1.2.3"],
  ["ORIGIN_URL", "http://[::2]:8788", "::2"],
  ["ALLOW_INSECURE_ORIGIN", "yes", "yes"],
  ["ALLOW_INSECURE_ORIGIN", "1", ""],
  ["PUBLIC_URL", "javascript:alert(1)", "alert"],
  ["PUBLIC_URL", "outpost.example.com", "outpost.example.com"],
  ["CORS_ORIGINS", "*", "*"],
  ["CORS_ORIGINS", "null", "null"],
  ["CORS_ORIGINS", "https://ok.example.com,not-an-origin", "not-an-origin"],
  ["CORS_ORIGINS", "https://app.test/path-x", "path-x"],
  ["CORS_ORIGINS", "ftp://files.example.com", "files.example.com"],
  ["CORS_ORIGINS", "chrome-extension://abcdefgh", "abcdefgh"],
  ["CORS_ORIGINS", "https://app.test:8443/?q=secret-q", "secret-q"],
  ["MAX_BODY_BYTES", "0", "0"],
  ["MAX_BODY_BYTES", "-5", "-5"],
  ["MAX_BODY_BYTES", "1.5", "1.5"],
  ["MAX_BODY_BYTES", "1e6", "1e6"],
  ["MAX_BODY_BYTES", "ten", "ten"],
  ["MAX_BODY_BYTES", "104857601", "104857601"],
  ["MAX_BODY_BYTES", "99999999999999999999", "99999999999999999999"],
  ["ORIGIN_TIMEOUT_MS", "99", "99"],
  ["ORIGIN_TIMEOUT_MS", "100001", "100001"],
  ["ORIGIN_TIMEOUT_MS", "0x100", "0x100"],
  ["READY_TIMEOUT_MS", "30001", "30001"],
  ["READY_TIMEOUT_MS", "50", "50"],
  ["PROXY_PATHS", "api/*", ""],
  ["PROXY_PATHS", "*", "*"],
  ["PROXY_PATHS", "/api/*/x", "/api/*/x"],
  ["PROXY_PATHS", "/api//x/*", "/api//x"],
  ["PROXY_PATHS", "/api/../admin/*", "admin"],
  ["PROXY_PATHS", "/api/*,/a b/*", "/a b"],
  ["VIEWER_WEBSOCKET_PATHS", "ws/*", ""],
  ["VIEWER_WEBSOCKET_PATHS", "/api/../ws/*", "../ws"],
  ["VIEWER_WEBSOCKET_PATHS", "*", "*"],
];

describe("parseConfig: bad values", () => {
  it.each(BAD)("%s=%j is reported by name without its value", (setting, value, secret) => {
    const result = parseConfig({ ...GOOD, [setting]: value });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems.map((p) => p.setting)).toEqual([setting]);
    expect(result.problems[0]?.reason).toMatch(/\w/);
    if (secret.length > 3) expect(JSON.stringify(result.problems)).not.toContain(secret);
  });

  it("reports every bad setting at once", () => {
    const result = parseConfig({ ...GOOD, ORIGIN_URL: "", MAX_BODY_BYTES: "x", PROXY_PATHS: "nope" });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problems.map((p) => p.setting).sort()).toEqual(["MAX_BODY_BYTES", "ORIGIN_URL", "PROXY_PATHS"]);
  });

  it("getConfig parses once per env object", () => {
    const envA = { ...GOOD };
    const first = getConfig(envA);
    envA.ORIGIN_URL = "broken";
    expect(getConfig(envA)).toBe(first);
    expect(getConfig({ ...envA }).ok).toBe(false);
  });
});

describe("ORIGIN_URL over plain http", () => {
  it.each(["http://127.0.0.1:8788", "http://127.1.2.3", "http://localhost:8788", "http://[::1]:8788", "https://origin.example.com"])(
    "%s is accepted (loopback, or https)",
    (url) => {
      expect(parsed({ ORIGIN_URL: url }).originUrl.href).toBe(new URL(url).href);
    },
  );

  it("to any other host is refused with a reason that names ALLOW_INSECURE_ORIGIN", () => {
    const result = parseConfig({ ...GOOD, ORIGIN_URL: "http://origin.example.com" });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems).toEqual([{ setting: "ORIGIN_URL", reason: expect.stringMatching(/must use https:\/\/ .*ALLOW_INSECURE_ORIGIN=true/) }]);
  });

  it("is allowed with ALLOW_INSECURE_ORIGIN=true, and refused again with false", () => {
    expect(parsed({ ORIGIN_URL: "http://origin.example.com", ALLOW_INSECURE_ORIGIN: "true" }).originUrl.host).toBe("origin.example.com");
    expect(parseConfig({ ...GOOD, ORIGIN_URL: "http://origin.example.com", ALLOW_INSECURE_ORIGIN: "false" }).ok).toBe(false);
  });

  it("makes /ready name both settings, and proxied paths 503 without reaching the origin", async () => {
    const fetchSpy = spyOrigin();
    const overrides = { ORIGIN_URL: "http://origin.example.com" };
    await expectError(await call("/api/echo/x", undefined, overrides), 503, "CONFIG_INVALID");
    expect(fetchSpy).not.toHaveBeenCalled();
    fetchSpy.mockRestore();
    const ready = await (await call("/ready", undefined, overrides)).json<{ checks: { config: { problems: string[] } } }>();
    expect(ready.checks.config.problems).toEqual([expect.stringMatching(/^ORIGIN_URL must use https:\/\/ .*ALLOW_INSECURE_ORIGIN=true allows plain http$/)]);
  });
});

describe("the Worker with a bad setting", () => {
  const cases: [keyof typeof GOOD, string, string][] = [
    ["ORIGIN_URL", "ftp://secret-host.internal", "secret-host"],
    ["MAX_BODY_BYTES", "lots-of-bytes", "lots-of-bytes"],
    ["PROXY_PATHS", "no-slash-path", "no-slash-path"],
    ["CORS_ORIGINS", "https://x.example.com/secret-path", "secret-path"],
  ];

  it.each(cases)("%s: proxied paths get 503 CONFIG_INVALID without the value", async (setting, value, secret) => {
    const fetchSpy = spyOrigin();
    const res = await call("/api/echo/x", undefined, { [setting]: value });
    const body = await expectError(res, 503, "CONFIG_INVALID");
    expect(JSON.stringify(body)).not.toContain(secret);
    expect(fetchSpy).not.toHaveBeenCalled();
    fetchSpy.mockRestore();
  });

  it.each(cases)("%s: /health stays 200 and /ready is 503 naming the setting", async (setting, value, secret) => {
    const health = await call("/health", undefined, { [setting]: value });
    expect(health.status).toBe(200);
    expect(health.headers.get("x-request-id")).toBeTruthy();
    const ready = await call("/ready", undefined, { [setting]: value });
    expect(ready.status).toBe(503);
    const text = await ready.text();
    expect(text).toContain(setting);
    expect(text).not.toContain(secret);
    const json = JSON.parse(text) as { ready: boolean; checks: { config: { ok: boolean; problems: string[] } } };
    expect(json.ready).toBe(false);
    expect(json.checks.config.ok).toBe(false);
    expect(json.checks.config.problems.some((p) => p.startsWith(`${setting} `))).toBe(true);
  });
});
