// The authenticated gateway on proxied paths: who gets through, and the signed assertion the origin gets instead of credentials.
import { createLocalJWKSet, decodeJwt, jwtVerify, type JSONWebKeySet } from "jose";
import { afterEach, describe, expect, inject, it, vi } from "vitest";
import { SCOPED_SANDBOX } from "../../../shared/identity.ts";
import {
  ALLOWED_ORIGIN,
  bearer,
  call,
  cookieValue,
  deviceLogin,
  expectError,
  expectInvalid,
  jsonInit,
  logOf,
  mint,
  tokenFor,
  type TestEnv,
} from "./helpers.ts";

interface Echo {
  method: string;
  path: string;
  query: string;
  headers: Record<string, string>;
}

const live = (extra: Partial<TestEnv> = {}): Partial<TestEnv> => ({ ORIGIN_URL: inject("originUrl"), ...extra });
const gw = (path: string, init: RequestInit = {}, extra: Partial<TestEnv> = {}) => call(path, init, live(extra));

async function echoOf(res: Response): Promise<Echo> {
  expect(res.status).toBe(200);
  return res.json<Echo>();
}

async function verifyAssertion(assertion: string) {
  const jwks = await (await call("/.well-known/jwks.json")).json<JSONWebKeySet>();
  return jwtVerify(assertion, createLocalJWKSet(jwks), {
    issuer: "https://outpost.example.com",
    audience: "origin",
    typ: "outpost-assertion+jwt",
    algorithms: ["ES256"],
  });
}

afterEach(() => vi.restoreAllMocks());

describe("who gets through", () => {
  it("answers 401 without credentials and never calls the origin", async () => {
    const fetchSpy = vi.spyOn(globalThis, "fetch");
    await expectError(await gw("/api/echo/x"), 401, "AUTH_REQUIRED");
    const bad = await mint({}, { kid: "nope" });
    await expectInvalid(await gw("/api/echo/x", bearer(bad)), bad);
    expect(fetchSpy).not.toHaveBeenCalled();
  });

  it("lets viewers read but not write", async () => {
    const viewer = await tokenFor("viewer");
    expect((await gw("/api/echo/x", bearer(viewer))).status).toBe(200);
    for (const method of ["POST", "PUT", "PATCH", "DELETE"]) {
      await expectError(await gw("/api/echo/x", { method, ...bearer(viewer) }), 403, "FORBIDDEN");
    }
    expect((await gw("/api/echo/x", jsonInit({ a: 1 }, { authorization: `Bearer ${await tokenFor("member")}` }))).status).toBe(200);
  });

  it("refuses everyone when no owner is configured, and unlisted emails always", async () => {
    await expectError(await gw("/api/echo/x", bearer(await tokenFor("member")), { OWNER_EMAILS: "" }), 403, "FORBIDDEN");
    const stranger = await mint({ sub: "outpost:x@example.com", email: "x@example.com" });
    await expectError(await gw("/api/echo/x", bearer(stranger)), 403, "FORBIDDEN");
  });

  it("refuses a revoked device's access token", async () => {
    const tokens = await deviceLogin("member");
    expect((await gw("/api/echo/x", bearer(tokens.access_token))).status).toBe(200);
    expect((await call(`/api/devices/${tokens.device_id}`, { method: "DELETE", ...bearer(await tokenFor("owner")) })).status).toBe(200);
    await expectInvalid(await gw("/api/echo/x", bearer(tokens.access_token)), tokens.access_token);
  });

  it("leaves non-proxied paths to the 404 handler", async () => {
    await expectError(await gw("/nope"), 404, "NOT_FOUND");
  });
});

describe("what the origin receives", () => {
  it("a signed assertion bound to the method and path+query, verifiable with the published JWKS", async () => {
    const echo = await echoOf(await gw("/api/echo/items/7?x=1&y=two", jsonInit({ a: 1 }, { authorization: `Bearer ${await tokenFor("member")}` }, "PATCH")));
    const assertion = echo.headers["outpost-assertion"]!;
    expect(assertion).toBeTruthy();
    const { payload, protectedHeader } = await verifyAssertion(assertion);
    expect(protectedHeader).toMatchObject({ alg: "ES256", typ: "outpost-assertion+jwt", kid: "test-current" });
    expect(payload).toMatchObject({
      sub: "outpost:member@example.com",
      email: "member@example.com",
      role: "member",
      htm: "PATCH",
      htu: "/api/echo/items/7?x=1&y=two",
    });
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(60);
    expect(payload.jti).toEqual(expect.any(String));
  });

  it("a fresh assertion per request, never the client's own", async () => {
    const headers = { authorization: `Bearer ${await tokenFor("owner")}`, "outpost-assertion": "forged", "x-outpost-user": "owner@example.com" };
    const a = await echoOf(await gw("/api/echo/a", { headers }));
    const b = await echoOf(await gw("/api/echo/a", { headers }));
    expect(a.headers["outpost-assertion"]).not.toBe("forged");
    expect(a.headers["x-outpost-user"]).toBeUndefined();
    const [pa, pb] = await Promise.all([verifyAssertion(a.headers["outpost-assertion"]!), verifyAssertion(b.headers["outpost-assertion"]!)]);
    expect(pa.payload.jti).not.toBe(pb.payload.jti);
    expect(pa.payload).toMatchObject({ htm: "GET", htu: "/api/echo/a", role: "owner" });
  });

  it("no Authorization header and no outpost_* cookies; other cookies pass", async () => {
    const token = await tokenFor("owner");
    const echo = await echoOf(
      await gw("/api/echo/c", {
        headers: { authorization: `Bearer ${token}`, cookie: "theme=dark; outpost_refresh=opr_secret; outpost_scoped=a.b.c; session=1" },
      }),
    );
    expect(echo.headers.authorization).toBeUndefined();
    expect(echo.headers.cookie).toBe("theme=dark; session=1");
    expect(JSON.stringify(echo)).not.toContain(token);
    expect(JSON.stringify(echo)).not.toContain("opr_secret");
  });

  it("the assertion is not a credential at the edge", async () => {
    const echo = await echoOf(await gw("/api/echo/a", bearer(await tokenFor("owner"))));
    const assertion = echo.headers["outpost-assertion"]!;
    await expectInvalid(await gw("/api/echo/a", bearer(assertion)), assertion);
    await expectInvalid(await call("/auth/me", bearer(assertion)), assertion);
  });
});

describe("scoped cookies on proxied paths", () => {
  async function scopedCookie(prefix: string): Promise<string> {
    const res = await call("/auth/scoped", jsonInit({ prefix, ttl_seconds: 120 }, { authorization: `Bearer ${await tokenFor("member")}` }));
    const code = new URL((await res.json<{ url: string }>()).url).hash.slice("#code=".length);
    const redeemed = await call("/auth/scoped/redeem", jsonInit({ code }, ALLOWED_ORIGIN));
    return cookieValue(redeemed.headers.get("set-cookie"), "outpost_scoped")!;
  }

  it("open paths under the prefix only, and never reach the origin as a cookie", async () => {
    const value = await scopedCookie("/api/echo/doc");
    const cookie = { cookie: `outpost_scoped=${value}; theme=dark` };
    const echo = await echoOf(await gw("/api/echo/doc/page?v=1", { headers: cookie }));
    expect(echo.headers.cookie).toBe("theme=dark");
    expect((await verifyAssertion(echo.headers["outpost-assertion"]!)).payload).toMatchObject({ email: "member@example.com", htu: "/api/echo/doc/page?v=1" });
    expect((await gw("/api/echo/doc", { headers: cookie })).status).toBe(200);
    for (const outside of ["/api/echo/other", "/api/echo/docx", "/api/echo/doc/../other", "/api/echo/doc/%2e%2e/other"]) {
      const res = await gw(outside, { headers: cookie });
      expect(res.status, outside).toBe(401);
    }
    expect(logOf(await gw("/api/echo/docx", { headers: cookie })).detail).toBe("scoped cookie outside its prefix");
    await expectInvalid(await gw("/api/echo/doc/x", bearer(value)), value);
  });
});

describe("requests a scoped cookie opens", () => {
  async function scopedCookie(prefix: string): Promise<string> {
    const res = await call("/auth/scoped", jsonInit({ prefix, ttl_seconds: 120 }, { authorization: `Bearer ${await tokenFor("member")}` }));
    const code = new URL((await res.json<{ url: string }>()).url).hash.slice("#code=".length);
    return cookieValue((await call("/auth/scoped/redeem", jsonInit({ code }, ALLOWED_ORIGIN))).headers.get("set-cookie"), "outpost_scoped")!;
  }

  it("are refused when two scoped cookies arrive (a planted one), in one Cookie header or two: never first-wins", async () => {
    const value = await scopedCookie("/api/echo/dup");
    const spy = vi.spyOn(globalThis, "fetch");
    for (const cookie of [`outpost_scoped=${value}; outpost_scoped=${value}`, `outpost_scoped=planted.jwt.x; theme=dark; outpost_scoped=${value}`]) {
      const res = await gw("/api/echo/dup/x", { headers: { cookie } });
      expect(logOf(res).detail).toBe("duplicate scoped cookies");
      await expectInvalid(res);
    }
    const headers = new Headers();
    headers.append("cookie", `outpost_scoped=${value}`);
    headers.append("cookie", "outpost_scoped=planted.jwt.x");
    await expectInvalid(await gw("/api/echo/dup/x", { headers }));
    expect(spy).not.toHaveBeenCalled();
    expect((await gw("/api/echo/dup/x", { headers: { cookie: `theme=dark; outpost_scoped=${value}` } })).status).toBe(200);
  });

  it("are refused from a foreign Origin; the sandboxed page's own (Origin: null or none) and ours pass", async () => {
    const value = await scopedCookie("/api/echo/orig");
    const post = (origin?: string) =>
      gw("/api/echo/orig/save", { method: "POST", body: "x", headers: { cookie: `outpost_scoped=${value}`, ...(origin ? { origin } : {}) } });
    for (const origin of ["https://evil.example.com", "https://sub.outpost.example.com", "http://localhost:5173"]) {
      await expectError(await post(origin), 403, "FORBIDDEN_ORIGIN");
    }
    for (const origin of [undefined, "null", "https://outpost.example.com"]) expect((await post(origin)).status, String(origin)).toBe(200);
  });

  it("are refused on another site's top-level navigation, not on the frame's own requests", async () => {
    const value = await scopedCookie("/api/echo/nav");
    const open = (dest: string, site: string, method = "GET") =>
      gw("/api/echo/nav/page", {
        method,
        headers: { cookie: `outpost_scoped=${value}`, "sec-fetch-dest": dest, "sec-fetch-site": site, "sec-fetch-mode": "navigate" },
      });
    for (const site of ["cross-site", "same-site"]) {
      await expectError(await open("document", site), 403, "FORBIDDEN_ORIGIN");
      await expectError(await open("document", site, "POST"), 403, "FORBIDDEN_ORIGIN");
    }
    // The web app's frame, a new tab it opened, a typed URL; and the sandboxed page's requests, all cross-site.
    for (const [dest, site] of [
      ["iframe", "same-origin"],
      ["document", "same-origin"],
      ["document", "none"],
      ["iframe", "cross-site"],
      ["script", "cross-site"],
    ]) {
      expect((await open(dest!, site!)).status, `${dest} ${site}`).toBe(200);
    }
  });

  it("answer sandboxed, framable only by the web app; bearer-token answers are left as they are", async () => {
    const value = await scopedCookie("/api/echo/sbx");
    const res = await gw("/api/echo/sbx/page", { headers: { cookie: `outpost_scoped=${value}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-security-policy")).toBe(`sandbox ${SCOPED_SANDBOX}; frame-ancestors 'self'`);
    const bearerRes = await gw("/api/echo/sbx/page", bearer(await tokenFor("member")));
    expect(bearerRes.status).toBe(200);
    expect(bearerRes.headers.get("content-security-policy")).toBeNull();
  });
});

describe("credentials tied to a device", () => {
  it("a scoped cookie minted from a device's token stops working when the device is revoked", async () => {
    const tokens = await deviceLogin("member");
    const res = await call("/auth/scoped", jsonInit({ prefix: "/api/echo/dev", ttl_seconds: 120 }, { authorization: `Bearer ${tokens.access_token}` }));
    const code = new URL((await res.json<{ url: string }>()).url).hash.slice("#code=".length);
    const value = cookieValue((await call("/auth/scoped/redeem", jsonInit({ code }, ALLOWED_ORIGIN))).headers.get("set-cookie"), "outpost_scoped")!;
    const cookie = { headers: { cookie: `outpost_scoped=${value}` } };
    expect((await gw("/api/echo/dev/x", cookie)).status).toBe(200);
    expect((await call(`/api/devices/${tokens.device_id}`, { method: "DELETE", ...bearer(tokens.access_token) })).status).toBe(200);
    expect(logOf(await gw("/api/echo/dev/x", cookie)).detail).toBe("device revoked");
  });
});

describe("WebSocket tickets", () => {
  const upgrade = (path: string) => gw(path, { headers: { upgrade: "websocket" } });
  const ticket = async (path: string) =>
    (await (await call("/auth/ws-ticket", jsonInit({ path }, { authorization: `Bearer ${await tokenFor("member")}` }))).json<{ ticket: string }>()).ticket;

  it("the spent ticket never reaches the origin, neither in the URL nor in the assertion", async () => {
    const t = await ticket("/api/ws/echo");
    const spy = vi.spyOn(globalThis, "fetch");
    const res = await upgrade(`/api/ws/echo?room=a&ticket=${t}`);
    expect(res.status).toBe(101);
    res.webSocket?.accept();
    res.webSocket?.close();
    const [input, init] = spy.mock.calls.at(-1)!;
    const url = new URL(String(input instanceof Request ? input.url : input));
    expect(url.pathname + url.search).toBe("/api/ws/echo?room=a");
    const assertion = new Headers(init?.headers).get("outpost-assertion")!;
    expect(decodeJwt(assertion).htu).toBe("/api/ws/echo?room=a");
    expect(assertion).not.toContain(t);
    spy.mockRestore();
  });

  it("an access token in ?ticket= is not a ticket", async () => {
    const access = await tokenFor("owner");
    await expectInvalid(await upgrade(`/api/ws/echo?ticket=${access}`), access);
  });

  it("a ticket opens its own path once, only on an upgrade, and not as a bearer token", async () => {
    const t = await ticket("/api/ws/echo");
    await expectError(await gw(`/api/ws/echo?ticket=${t}`), 401, "AUTH_REQUIRED");
    await expectInvalid(await gw("/api/ws/echo", bearer(t)), t);
    await expectInvalid(await upgrade(`/api/ws/other?ticket=${t}`), t);
    const first = await upgrade(`/api/ws/echo?ticket=${t}`);
    expect(first.status).toBe(101);
    first.webSocket?.accept();
    first.webSocket?.close();
    await expectInvalid(await upgrade(`/api/ws/echo?ticket=${t}`), t);
  });
});
