// CORS against the exact allowlist, preflights answered at the edge, and the Origin check on WebSocket upgrades.
import { afterEach, describe, expect, it, vi } from "vitest";
import { DEV_ORIGINS } from "../../shared/settings/index.ts";
import { mint } from "./auth/helpers.ts";
import { call, expectError, live, sentToOrigin, spyOrigin } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

const ALLOWED = [
  "https://outpost.example.com", // PUBLIC_URL
  "https://extra.example.com", // CORS_ORIGINS
];

const DISALLOWED = [
  // The local development origins: PUBLIC_URL is not local here (see "local development origins" below).
  ...DEV_ORIGINS,
  "https://evil.example",
  "https://outpost.example.com.evil.com",
  "https://evil-outpost.example.com",
  "https://sub.outpost.example.com",
  "http://outpost.example.com", // http instead of https
  "https://outpost.example.com/", // trailing slash
  "https://outpost.example.com:443",
  "HTTPS://OUTPOST.EXAMPLE.COM",
  "https://outpost.example.co",
  "http://localhost:5174",
  "http://localhost",
  "https://localhost:5173",
  "http://127.0.0.1:5173",
  "null",
  "*",
  "https://extra.example.com, https://evil.example",
];

function preflight(origin: string, method = "POST"): RequestInit {
  return {
    method: "OPTIONS",
    headers: { origin, "access-control-request-method": method, "access-control-request-headers": "content-type, x-custom" },
  };
}

describe("simple requests", () => {
  it.each(ALLOWED)("allows %s with credentials and Vary: Origin", async (origin) => {
    const res = await call("/api/echo/cors", { headers: { origin } }, live());
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe(origin);
    expect(res.headers.get("access-control-allow-credentials")).toBe("true");
    expect(res.headers.get("access-control-expose-headers")).toMatch(/X-Request-Id/i);
    expect(res.headers.get("vary")).toMatch(/\bOrigin\b/i);
  });

  it.each(DISALLOWED)("gives %j no Access-Control-Allow-Origin", async (origin) => {
    const res = await call("/api/echo/cors", { headers: { origin } }, live());
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    expect(res.headers.get("vary")).toMatch(/\bOrigin\b/i);
  });

  it("adds CORS headers to edge errors too, so a browser can read them", async () => {
    const res = await call("/auth/nothing", { headers: { origin: "https://extra.example.com" } });
    await expectError(res, 404, "NOT_FOUND");
    expect(res.headers.get("access-control-allow-origin")).toBe("https://extra.example.com");
  });

  it("follows PUBLIC_URL and CORS_ORIGINS: the old public origin stops being allowed", async () => {
    const overrides = { PUBLIC_URL: "https://new.example.net/app", CORS_ORIGINS: "https://one.example.org,http://two.example.org:3000" };
    for (const origin of ["https://new.example.net", "https://one.example.org", "http://two.example.org:3000"]) {
      const res = await call("/health", { headers: { origin } }, overrides);
      expect(res.headers.get("access-control-allow-origin"), origin).toBe(origin);
    }
    for (const origin of ["https://outpost.example.com", "https://extra.example.com", "https://new.example.net/app"]) {
      const res = await call("/health", { headers: { origin } }, overrides);
      expect(res.headers.get("access-control-allow-origin"), origin).toBeNull();
    }
  });

  it("allows no origin at all, not even a dev origin, while the config is invalid", async () => {
    const res = await call("/health", { headers: { origin: "http://localhost:5173" } }, { ORIGIN_URL: "" });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("does not pass through an origin's own Access-Control-Allow-Origin for a disallowed Origin", async () => {
    spyOrigin().mockImplementation(async (_input, init) => {
      const origin = new Headers(init?.headers).get("origin") ?? "*";
      return new Response("{}", { headers: { "access-control-allow-origin": origin, "content-type": "application/json" } });
    });
    const evil = await call("/api/data", { headers: { origin: "https://evil.example" } });
    expect(evil.status).toBe(200);
    expect(evil.headers.get("access-control-allow-origin")).toBeNull();
    const good = await call("/api/data", { headers: { origin: "https://extra.example.com" } });
    expect(good.headers.get("access-control-allow-origin")).toBe("https://extra.example.com");
  });
});

describe("preflight", () => {
  it.each(ALLOWED)("is answered at the edge with 204 for %s", async (origin) => {
    const res = await call("/api/echo/x", preflight(origin, "PUT"));
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe(origin);
    expect(res.headers.get("access-control-allow-credentials")).toBe("true");
    expect(res.headers.get("access-control-allow-methods")).toContain("PUT");
    expect(res.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("x-custom");
    expect(res.headers.get("access-control-max-age")).toBe("600");
    expect(res.headers.get("vary")).toMatch(/\bOrigin\b/i);
    expect(res.headers.get("x-request-id")).toBeTruthy();
  });

  it("never reaches the origin, even when the origin is up", async () => {
    const fetchSpy = spyOrigin();
    const res = await call("/api/echo/preflight", preflight("http://localhost:5173"), live());
    expect(res.status).toBe(204);
    expect(await res.text()).toBe("");
    expect(res.headers.get("content-type")).toBeNull();
    expect(fetchSpy).not.toHaveBeenCalled();
  });

  it.each(["https://evil.example", "https://outpost.example.com.evil.com", "null"])(
    "from %j gets 204 without Access-Control-Allow-Origin and is not forwarded",
    async (origin) => {
      const fetchSpy = spyOrigin();
      const res = await call("/api/echo/x", preflight(origin), live());
      expect(res.status).toBe(204);
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
      expect(await res.text()).toBe("");
      expect(fetchSpy).not.toHaveBeenCalled();
    },
  );
});

describe("WebSocket upgrades", () => {
  const upgrade = (origin?: string): RequestInit => ({
    headers: { upgrade: "websocket", connection: "Upgrade", ...(origin ? { origin } : {}) },
  });

  it.each(["https://evil.example", "https://outpost.example.com.evil.com", "http://outpost.example.com", "null"])(
    "from %j on a proxied path → 403 FORBIDDEN_ORIGIN before the origin",
    async (origin) => {
      const fetchSpy = spyOrigin();
      for (const path of ["/socket.io/?EIO=4&transport=websocket", "/api/ws/echo"]) {
        const res = await call(path, upgrade(origin), live());
        await expectError(res, 403, "FORBIDDEN_ORIGIN");
      }
      expect(fetchSpy).not.toHaveBeenCalled();
    },
  );

  it("checks the Origin whatever the case of the Upgrade value", async () => {
    const fetchSpy = spyOrigin();
    const res = await call("/api/ws/echo", { headers: { upgrade: "WebSocket", origin: "https://evil.example" } }, live());
    await expectError(res, 403, "FORBIDDEN_ORIGIN");
    expect(fetchSpy).not.toHaveBeenCalled();
  });

  it("forwards an upgrade from an allowed origin with the Upgrade header intact", async () => {
    const fetchSpy = spyOrigin().mockResolvedValue(new Response("no upgrade here", { status: 426 }));
    const res = await call("/socket.io/?EIO=4", upgrade("https://outpost.example.com"));
    expect(res.status).toBe(426);
    expect(fetchSpy).toHaveBeenCalledTimes(1);
    const sent = sentToOrigin(fetchSpy);
    expect(sent.headers.get("upgrade")).toBe("websocket");
    expect(sent.url).toMatch(/\/socket\.io\/\?EIO=4$/);
  });
});

describe("local development origins", () => {
  const LOCAL_PUBLIC_URLS = ["http://localhost:8787", "http://127.0.0.1:8787", "http://[::1]:8787", "http://127.0.0.2:9000"];
  const upgrade = (origin: string, token?: string): RequestInit => ({
    headers: { upgrade: "websocket", origin, ...(token ? { authorization: `Bearer ${token}` } : {}) },
  });

  it.each(LOCAL_PUBLIC_URLS)("are allowed by CORS and for WebSockets while PUBLIC_URL is %s", async (publicUrl) => {
    for (const origin of DEV_ORIGINS) {
      const res = await call("/health", { headers: { origin } }, { PUBLIC_URL: publicUrl });
      expect(res.headers.get("access-control-allow-origin"), origin).toBe(origin);
      const pre = await call("/api/x", preflight(origin), { PUBLIC_URL: publicUrl });
      expect(pre.headers.get("access-control-allow-origin"), origin).toBe(origin);
    }
    const fetchSpy = spyOrigin().mockResolvedValue(new Response("no upgrade here", { status: 426 }));
    // PUBLIC_URL is the issuer: a token for this deployment.
    const token = await mint({ iss: new URL(publicUrl).origin });
    expect((await call("/socket.io/?EIO=4", upgrade(DEV_ORIGINS[0]!, token), { PUBLIC_URL: publicUrl })).status).toBe(426);
    expect(fetchSpy).toHaveBeenCalledTimes(1);
  });

  it.each([
    "https://outpost.example.com",
    "http://localhost.evil.example",
    "http://127.0.0.1.nip.io:8787",
    "http://0.0.0.0:8787",
    "https://localhost-gw.example.com",
    "",
  ])("are refused by CORS and for WebSockets while PUBLIC_URL is %j", async (publicUrl) => {
    const fetchSpy = spyOrigin();
    for (const origin of DEV_ORIGINS) {
      const res = await call("/health", { headers: { origin } }, { PUBLIC_URL: publicUrl });
      expect(res.headers.get("access-control-allow-origin"), origin).toBeNull();
      await expectError(await call("/api/ws/echo", upgrade(origin), { PUBLIC_URL: publicUrl }), 403, "FORBIDDEN_ORIGIN");
    }
    expect(fetchSpy).not.toHaveBeenCalled();
  });
});
