// The proxy's header hygiene against smuggling and against the web app: what never reaches the origin, what never reaches the browser, and no cache.
import { env } from "cloudflare:test";
import { afterEach, describe, expect, inject, it, vi } from "vitest";
import { probeOrigin } from "../../durable-objects/presence/outbox.ts";
import { tokenFor } from "./auth/helpers.ts";
import { CALLER, clock, fakeOrigin, hub, runDueAlarm } from "./presence/helpers.ts";
import { call, expectError, live, sentToOrigin, spyOrigin, type Echo } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

/** The init the Worker handed to fetch for its n-th call. */
function initOf(spy: ReturnType<typeof spyOrigin>, n = 0): RequestInit {
  const call = spy.mock.calls[n];
  if (!call) throw new Error(`fetch was called ${spy.mock.calls.length} times`);
  return call[1] ?? {};
}

describe("nothing the origin answers is cached by Cloudflare", () => {
  it("a proxied request is fetched with cache: no-store, and workerd accepts it at this compatibility date", async () => {
    const spy = spyOrigin();
    // A static-looking path: what a zone's default cache rules would keep.
    const res = await call("/api/echo/logo.png", undefined, live());
    expect(res.status).toBe(200);
    expect(initOf(spy).cache).toBe("no-store");
    expect((await res.json<Echo>()).path).toBe("/api/echo/logo.png");
  });

  it("so is a proxied WebSocket upgrade", async () => {
    const spy = spyOrigin();
    const res = await call("/api/ws/echo", { headers: { upgrade: "websocket" } }, live());
    expect(res.status).toBe(101);
    res.webSocket!.accept();
    res.webSocket!.close();
    expect(initOf(spy).cache).toBe("no-store");
  });

  it("/ready's origin check is fetched with cache: no-store", async () => {
    const spy = spyOrigin();
    const res = await call("/ready", undefined, live());
    expect(res.status).toBe(200);
    const i = spy.mock.calls.findIndex(([input]) => String(input).endsWith("/health"));
    expect(i).toBeGreaterThanOrEqual(0);
    expect(initOf(spy, i).cache).toBe("no-store");
  });

  it("the presence hub's event batches are posted with cache: no-store", async () => {
    clock.start();
    const origin = fakeOrigin();
    try {
      const stub = hub();
      await stub.heartbeat(CALLER, [{ id: "cache-1" }]);
      await stub.end(CALLER, "cache-1", { exitCode: 0 });
      expect(await runDueAlarm(stub)).toBe(true);
      expect(origin.state.deliveries).toHaveLength(1);
      const posts = vi.mocked(globalThis.fetch).mock.calls.filter(([input]) => String(input).endsWith("/outpost/events"));
      expect(posts).toHaveLength(1);
      expect(posts[0]![1]?.cache).toBe("no-store");
    } finally {
      origin.restore();
      clock.stop();
    }
  });

  it("the presence hub's probe is fetched with cache: no-store", async () => {
    const spy = spyOrigin();
    expect(await probeOrigin({ ...env, ORIGIN_URL: inject("originUrl") })).toBe(true);
    expect(initOf(spy).cache).toBe("no-store");
  });
});

// Each of these is something a server or a framework behind the origin may honour: a forged client address, a path
// other than the one the edge checked, a write dressed as a GET, an identity header in its CGI spelling.
const SMUGGLED: Record<string, string> = {
  Forwarded: "for=6.6.6.6;host=evil.example;proto=http",
  "X-Original-URL": "/api/admin",
  "X-Rewrite-URL": "/api/admin",
  "True-Client-IP": "6.6.6.6",
  "X-Client-IP": "6.6.6.6",
  "X-HTTP-Method-Override": "DELETE",
  "X-HTTP-Method": "DELETE",
  "X-Method-Override": "DELETE",
  X_Outpost_Role: "owner",
  X_Outpost_Email: "owner@example.com",
  X_Forwarded_For: "6.6.6.6",
  X_Forwarded_Host: "evil.example",
  x_forwarded_proto: "http",
  Outpost_Assertion: "forged.jwt.value",
  X_Request_Id: "forged",
  X_Real_IP: "6.6.6.6",
  Proxy_Authorization: "Basic eDp5",
  CF_Connecting_IP: "6.6.6.6",
  Content_Length: "5",
};

describe("no header smuggling towards the origin", () => {
  it("drops every smuggled header, whatever its spelling, before fetch and at the real origin", async () => {
    const spy = spyOrigin();
    const res = await call("/api/echo/smuggle", { headers: { ...SMUGGLED, X_Custom_Thing: "kept", "X-Custom": "kept" } }, live());
    expect(res.status).toBe(200);
    const echo = await res.json<Echo>();
    const sent = sentToOrigin(spy).headers;
    for (const name of Object.keys(SMUGGLED)) {
      expect(sent.has(name), `sent ${name}`).toBe(false);
      expect(echo.headers[name.toLowerCase()], `origin saw ${name}`).toBeUndefined();
    }
    expect(JSON.stringify(echo.headers)).not.toContain("6.6.6.6");
    expect(JSON.stringify(echo.headers)).not.toContain("evil.example");
    expect(JSON.stringify(echo.headers)).not.toContain("DELETE");
    // Only names that stand for a header the gateway owns are dropped; other "_" names pass.
    expect(echo.headers.x_custom_thing).toBe("kept");
    expect(echo.headers["x-custom"]).toBe("kept");
    expect(echo.headers["x-forwarded-for"]).toBe("127.0.0.1");
    expect(echo.method).toBe("GET");
  });

  it("a viewer's GET with a method override stays a GET the viewer may send", async () => {
    const spy = spyOrigin();
    const viewer = await tokenFor("viewer");
    const res = await call("/api/echo/v", { headers: { authorization: `Bearer ${viewer}`, "X-HTTP-Method-Override": "DELETE" } }, live());
    expect(res.status).toBe(200);
    expect(sentToOrigin(spy).method).toBe("GET");
    expect(sentToOrigin(spy).headers.has("x-http-method-override")).toBe(false);
  });

  it("a header named in Connection is dropped in its '_' spelling too", async () => {
    const spy = spyOrigin();
    await call("/api/echo/c", { headers: { connection: "x-secret-hop", X_Secret_Hop: "1" } }, live());
    expect(sentToOrigin(spy).headers.has("x_secret_hop")).toBe(false);
  });
});

/** The Worker's answer when the origin answers with these headers. */
async function answeredWith(headers: [string, string][]): Promise<Response> {
  spyOrigin().mockResolvedValue(new Response("page", { headers: new Headers(headers) }));
  const res = await call("/api/app/page");
  expect(res.status).toBe(200);
  return res;
}

describe("proxied responses cannot reach into the web app", () => {
  it("drops Set-Cookie for Outpost's own cookie names, in any case or prefix, and keeps the app's own cookies", async () => {
    const res = await answeredWith([
      ["set-cookie", "__Host-outpost_refresh=planted; Path=/; Secure; HttpOnly"],
      ["set-cookie", "outpost_refresh=planted; Path=/auth"],
      ["set-cookie", "outpost_scoped=planted; Path=/api"],
      ["set-cookie", "OUTPOST_SCOPED=planted; Path=/api"],
      ["set-cookie", "__Secure-outpost_x=planted; Secure"],
      ["set-cookie", " outpost_refresh =planted"],
      ["set-cookie", "theme=dark; Path=/api/app"],
      ["set-cookie", "app_session=1; Path=/api/app; HttpOnly"],
    ]);
    expect(res.headers.getSetCookie()).toEqual(["theme=dark; Path=/api/app", "app_session=1; Path=/api/app; HttpOnly"]);
  });

  it("drops Service-Worker-Allowed and Clear-Site-Data, keeps the rest", async () => {
    const res = await answeredWith([
      ["service-worker-allowed", "/"],
      ["clear-site-data", '"cookies", "storage"'],
      ["content-type", "text/html"],
      ["x-app", "yes"],
    ]);
    expect(res.headers.has("service-worker-allowed")).toBe(false);
    expect(res.headers.has("clear-site-data")).toBe(false);
    expect(res.headers.get("x-app")).toBe("yes");
    expect(await res.text()).toBe("page");
  });

  it("a refusal at the edge changes nothing: an unauthenticated request is 401 and fetches nothing", async () => {
    const spy = spyOrigin();
    await expectError(await call("/api/app/page", { headers: SMUGGLED }, live(), { anonymous: true }), 401, "AUTH_REQUIRED");
    expect(spy).not.toHaveBeenCalled();
  });
});
