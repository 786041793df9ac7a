// WebSocket tickets and scoped access: minting rules, bad inputs, the single-use code and the cookie it sets.
import { describe, expect, it } from "vitest";
import {
  ALLOWED_ORIGIN,
  bearer,
  call,
  cookieValue,
  decodeJwt,
  decodeProtectedHeader,
  deviceLogin,
  expectError,
  expectInvalid,
  jsonInit,
  sha256,
  sql,
  tokenFor,
} from "./helpers.ts";

const authed = async (role: "owner" | "member" | "viewer" = "owner") => ({ authorization: `Bearer ${await tokenFor(role)}` });
const ticketFor = async (path: unknown, headers?: Record<string, string>) => call("/auth/ws-ticket", jsonInit({ path }, headers ?? (await authed())));
const scoped = async (body: Record<string, unknown>, headers?: Record<string, string>) => call("/auth/scoped", jsonInit(body, headers ?? (await authed())));
const redeem = (code: string, headers: Record<string, string> = ALLOWED_ORIGIN) => call("/auth/scoped/redeem", jsonInit({ code }, headers));

describe("POST /auth/ws-ticket", () => {
  it("mints a 30 s ticket bound to the path and the caller", async () => {
    const tokens = await deviceLogin("member");
    const res = await ticketFor("/api/ws/echo", { authorization: `Bearer ${tokens.access_token}` });
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const { ticket, expires_in } = await res.json<{ ticket: string; expires_in: number }>();
    expect(expires_in).toBe(30);
    expect(decodeProtectedHeader(ticket)).toMatchObject({ alg: "ES256", typ: "outpost-ws-ticket+jwt", kid: "test-current" });
    const claims = decodeJwt(ticket);
    expect(claims).toMatchObject({
      aud: "outpost-ws",
      iss: "https://outpost.example.com",
      path: "/api/ws/echo",
      email: "member@example.com",
      sub: "outpost:member@example.com",
      sid: tokens.device_id,
    });
    expect(claims.exp! - claims.iat!).toBe(30);
    expect(claims.session_exp).toBe(decodeJwt(tokens.access_token).exp);
  });

  it("is not accepted as a bearer token", async () => {
    const { ticket } = await (await ticketFor("/api/ws/echo")).json<{ ticket: string }>();
    await expectInvalid(await call("/auth/me", bearer(ticket)), ticket);
    await expectInvalid(await call("/api/devices", bearer(ticket)), ticket);
  });

  it.each([
    ["empty", ""],
    ["relative", "api/ws"],
    ["with a query", "/api/ws?x=1"],
    ["with a fragment", "/api/ws#x"],
    ["with ..", "/api/../auth/me"],
    ["with a space", "/api/ws echo"],
    ["with a percent escape", "/api/%2e%2e/x"],
    ["a full URL", "https://evil.example.com/api/ws"],
    ["too long", `/${"a".repeat(512)}`],
    ["a number", 42],
    ["missing", undefined],
  ])("refuses a path that is %s", async (_label, path) => {
    await expectError(await ticketFor(path), 400, "BAD_REQUEST");
  });

  it("needs a valid access token", async () => {
    await expectError(await call("/auth/ws-ticket", jsonInit({ path: "/api/ws" })), 401, "AUTH_REQUIRED");
  });
});

describe("POST /auth/scoped", () => {
  it("returns a link whose one-time code rides in the fragment", async () => {
    const res = await scoped({ prefix: "/api/editor/", ttl_seconds: 300 }, await authed("viewer"));
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const body = await res.json<{ url: string; prefix: string; expires_in: number }>();
    expect(body.url).toMatch(/^https:\/\/outpost\.example\.com\/auth\/scoped\/open#code=[A-Za-z0-9_-]{32}$/);
    expect(body).toMatchObject({ prefix: "/api/editor/", expires_in: 300 });
    const code = new URL(body.url).hash.slice("#code=".length);
    const rows = await sql<{ code_hash: string }>("SELECT code_hash FROM scoped_codes WHERE code_hash = ?", await sha256(code));
    expect(rows).toHaveLength(1);
  });

  it("defaults to 15 minutes", async () => {
    expect(await (await scoped({ prefix: "/api/x" })).json()).toMatchObject({ expires_in: 900 });
  });

  it.each([
    ["outside the proxied paths", { prefix: "/auth/" }],
    ["the root", { prefix: "/" }],
    ["an unproxied path", { prefix: "/apix/" }],
    ["with ..", { prefix: "/api/../auth/" }],
    ["with .", { prefix: "/api/./x/" }],
    ["with //", { prefix: "/api//x/" }],
    ["relative", { prefix: "api/x/" }],
    ["with a query", { prefix: "/api/x?y=1" }],
    ["missing", {}],
    ["ttl above 900", { prefix: "/api/x/", ttl_seconds: 901 }],
    ["ttl below 30", { prefix: "/api/x/", ttl_seconds: 29 }],
    ["ttl as a string", { prefix: "/api/x/", ttl_seconds: "300" }],
    ["ttl not an integer", { prefix: "/api/x/", ttl_seconds: 300.5 }],
    ["ttl negative", { prefix: "/api/x/", ttl_seconds: -1 }],
    ["all of /api/", { prefix: "/api/" }],
    ["all of /api", { prefix: "/api" }],
    ["all of /socket.io/", { prefix: "/socket.io/" }],
  ])("refuses a prefix or ttl %s with 400", async (_label, body) => {
    await expectError(await scoped(body), 400, "BAD_REQUEST");
  });

  it("needs a valid access token", async () => {
    await expectError(await call("/auth/scoped", jsonInit({ prefix: "/api/x/" })), 401, "AUTH_REQUIRED");
  });
});

describe("GET /auth/scoped/open", () => {
  it("is a top-level page only: nothing may frame it, and it runs only its own script", async () => {
    const res = await call("/auth/scoped/open");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    const csp = res.headers.get("content-security-policy")!;
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toMatch(/default-src 'none'/);
    expect(csp).toMatch(/script-src 'nonce-[^']+'/);
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    expect(res.headers.get("cache-control")).toBe("no-store");
    await res.body?.cancel();
  });
});

describe("POST /auth/scoped/redeem", () => {
  const codeOf = async (prefix = "/api/editor/", ttl = 300) => {
    const { url } = await (await scoped({ prefix, ttl_seconds: ttl })).json<{ url: string }>();
    return new URL(url).hash.slice("#code=".length);
  };

  // SameSite=None: the page runs in a sandboxed frame (an opaque origin), whose every request is cross-site; the gateway
  // refuses the cross-site requests a browser marks (gateway.test.ts), and the cookie never opens anything but the prefix.
  it("sets an HttpOnly, Secure, SameSite=None cookie scoped to the prefix, once", async () => {
    const code = await codeOf("/api/editor/", 300);
    const res = await redeem(code);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ location: "/api/editor/" });
    const setCookie = res.headers.get("set-cookie")!;
    expect(setCookie).toMatch(/^outpost_scoped=[\w-]+\.[\w-]+\.[\w-]+;/);
    expect(setCookie).toMatch(/; Path=\/api\/editor(;|$)/);
    expect(setCookie).toMatch(/; HttpOnly/);
    expect(setCookie).toMatch(/; Secure/);
    expect(setCookie).toMatch(/; SameSite=None/);
    expect(setCookie).not.toMatch(/; Domain=/i);
    const maxAge = Number(/Max-Age=(\d+)/.exec(setCookie)?.[1]);
    expect(maxAge).toBeGreaterThan(290);
    expect(maxAge).toBeLessThanOrEqual(300);
    const token = cookieValue(setCookie, "outpost_scoped")!;
    expect(decodeProtectedHeader(token).typ).toBe("outpost-scoped+jwt");
    expect(decodeJwt(token)).toMatchObject({ aud: "outpost-scoped", prefix: "/api/editor/", email: "owner@example.com" });
    await expectInvalid(await redeem(code));
  });

  it("the cookie's value is not a bearer token, and the cookie does not open /auth/me", async () => {
    const res = await redeem(await codeOf());
    const token = cookieValue(res.headers.get("set-cookie"), "outpost_scoped")!;
    await expectInvalid(await call("/auth/me", bearer(token)), token);
    await expectError(await call("/auth/me", { headers: { cookie: `outpost_scoped=${token}` } }), 401, "AUTH_REQUIRED");
    await expectError(await call("/auth/scoped", jsonInit({ prefix: "/api/editor/" }, { cookie: `outpost_scoped=${token}` })), 401, "AUTH_REQUIRED");
  });

  it("needs an Origin of ours, and a refused attempt does not burn the code", async () => {
    const code = await codeOf();
    await expectError(await redeem(code, {}), 403, "FORBIDDEN_ORIGIN");
    // "null": a sandboxed page (the framed laptop app itself) cannot trade codes; nor can a dev origin while PUBLIC_URL is public.
    for (const origin of ["https://evil.example.com", "null", "http://localhost:5173", "https://sub.outpost.example.com"]) {
      await expectError(await redeem(code, { origin }), 403, "FORBIDDEN_ORIGIN");
    }
    expect((await redeem(code)).status).toBe(200);
  });

  it("refuses unknown, missing and expired codes", async () => {
    await expectInvalid(await redeem("A".repeat(32)));
    await expectInvalid(await call("/auth/scoped/redeem", jsonInit({}, ALLOWED_ORIGIN)));
    const code = await codeOf();
    await sql("UPDATE scoped_codes SET expires_at = ? WHERE code_hash = ?", Date.now() - 1, await sha256(code));
    await expectInvalid(await redeem(code));
  });

  it("a prefix without a trailing slash becomes the cookie path as is", async () => {
    const res = await redeem(await codeOf("/api/notes", 60));
    expect(res.headers.get("set-cookie")).toMatch(/; Path=\/api\/notes(;|$)/);
  });
});
