// Direct hits on the real origin (a leaked tunnel hostname): every request without a valid, fresh, bound assertion is 401 and goes nowhere.
import { SignJWT } from "jose";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { mintAccessToken, TEST_SIGNING_KEY } from "../../support/identity.ts";
import { rawRequest } from "../../support/http-client.ts";
import { spawnOrigin, type SpawnedOrigin } from "../../support/spawn-origin.ts";
import { openWebSocket, nextMessage, closeWebSocket } from "../../support/ws-client.ts";
import { startTestApp, type TestApp } from "./app-server.ts";
import { api, assertion, ISSUER, otherKey, postEvents, presenceEvent, signedFetch, type AssertionOptions, type ErrorJson } from "./helpers.ts";

let app: TestApp;
let forwarding: SpawnedOrigin;
let builtin: SpawnedOrigin;

beforeAll(async () => {
  app = await startTestApp();
  [forwarding, builtin] = await Promise.all([spawnOrigin(["--upstream", app.url]), spawnOrigin()]);
});

afterAll(async () => {
  await Promise.all([forwarding?.stop(), builtin?.stop()]);
  await app?.close();
});

beforeEach(() => app.reset());

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
const now = () => Math.floor(Date.now() / 1000);
const claimsFor = (htm: string, htu: string) => ({
  iss: ISSUER,
  aud: "origin",
  sub: "outpost:owner@example.com",
  email: "owner@example.com",
  role: "owner",
  htm,
  htu,
  jti: crypto.randomUUID(),
  iat: now(),
  exp: now() + 60,
});

/** Each case: the assertion sent with `GET /api/target?x=1` (null: no header at all). */
const CASES: [string, () => Promise<string | null>][] = [
  ["no assertion", async () => null],
  ["an empty assertion", async () => ""],
  ["garbage", async () => "not-a-jwt"],
  ["expired", () => assertion("GET", "/api/target?x=1", { iatOffset: -120 })],
  ["expired just beyond the clock skew", () => assertion("GET", "/api/target?x=1", { iatOffset: -66 })],
  ["not yet valid (iat in the future)", () => assertion("GET", "/api/target?x=1", { iatOffset: 120 })],
  ["not yet valid (nbf in the future)", () => assertion("GET", "/api/target?x=1", { nbfOffset: 120 })],
  ["for another audience", () => assertion("GET", "/api/target?x=1", { aud: "another-origin" })],
  ["from another issuer", () => assertion("GET", "/api/target?x=1", { iss: "https://evil.example.com" })],
  ["signed by another key under the edge's kid", () => assertion("GET", "/api/target?x=1", { key: otherKey(TEST_SIGNING_KEY.kid) })],
  ["signed by an unknown key", () => assertion("GET", "/api/target?x=1", { key: otherKey("stranger") })],
  ["alg none", async () => `${b64({ alg: "none", typ: "outpost-assertion+jwt" })}.${b64(claimsFor("GET", "/api/target?x=1"))}.`],
  [
    "HS256 with the edge's public key as the secret",
    async () =>
      new SignJWT(claimsFor("GET", "/api/target?x=1"))
        .setProtectedHeader({ alg: "HS256", typ: "outpost-assertion+jwt", kid: TEST_SIGNING_KEY.kid })
        .sign(new TextEncoder().encode(JSON.stringify({ kty: "EC", crv: "P-256", x: TEST_SIGNING_KEY.x, y: TEST_SIGNING_KEY.y }))),
  ],
  ["with another typ", () => assertion("GET", "/api/target?x=1", { typ: "at+jwt" })],
  ["a user's access token instead of an assertion", () => mintAccessToken(ISSUER, "owner@example.com")],
  ["living longer than 60 s", () => assertion("GET", "/api/target?x=1", { ttl: 3600 })],
  ["bound to another method", () => assertion("POST", "/api/target?x=1")],
  ["bound to another path", () => assertion("GET", "/api/other?x=1")],
  ["bound to another query", () => assertion("GET", "/api/target?x=2")],
  ["bound to the path without its query", () => assertion("GET", "/api/target")],
  ["without htm and htu", () => assertion("GET", "/api/target?x=1", { claims: { htm: undefined, htu: undefined } })],
];

async function expectRefused(res: Response, requestId?: string): Promise<void> {
  expect(res.status).toBe(401);
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  const body = (await res.json()) as ErrorJson;
  expect(Object.keys(body)).toEqual(["error"]);
  expect(Object.keys(body.error).sort()).toEqual(["code", "message", "requestId"]);
  expect(body.error.code).toBe("AUTH_INVALID");
  expect(body.error.requestId).toBeTruthy();
  if (requestId) expect(body.error.requestId).toBe(requestId);
}

describe("the refusal matrix: 401, and the app behind --upstream sees nothing", () => {
  it.each(CASES)("%s", async (_name, make) => {
    const token = await make();
    const headers: Record<string, string> = { "x-request-id": "req-matrix-1" };
    if (token !== null) headers["outpost-assertion"] = token;
    await expectRefused(await fetch(`${forwarding.url}/api/target?x=1`, { headers }), "req-matrix-1");
    await new Promise((r) => setTimeout(r, 50));
    expect(app.seen).toEqual([]);
  });

  it("the positive control: the same request with a valid assertion reaches the app", async () => {
    const res = await signedFetch(forwarding.url, "/api/target?x=1");
    expect(res.status).toBe(200);
    expect(app.seen.map((s) => s.url)).toEqual(["/api/target?x=1"]);
  });

  it("a replayed assertion (same jti) is refused, also on another path", async () => {
    const jti = crypto.randomUUID();
    const token = await assertion("GET", "/api/once", { jti });
    expect((await fetch(`${forwarding.url}/api/once`, { headers: { "outpost-assertion": token } })).status).toBe(200);
    await expectRefused(await fetch(`${forwarding.url}/api/once`, { headers: { "outpost-assertion": token } }));
    const sameJti = await assertion("GET", "/api/twice", { jti });
    await expectRefused(await fetch(`${forwarding.url}/api/twice`, { headers: { "outpost-assertion": sameJti } }));
    expect(app.seen.map((s) => s.url)).toEqual(["/api/once"]);
  });

  it("an assertion copied onto a WebSocket upgrade for another path is refused before the app sees it", async () => {
    const copied = await assertion("GET", "/api/target?x=1");
    const refused = await openWebSocket(`${forwarding.url}/api/ws`, { headers: { "outpost-assertion": copied } });
    expect(refused.ok).toBe(false);
    if (!refused.ok) {
      expect(refused.status).toBe(401);
      expect((JSON.parse(refused.body) as ErrorJson).error.code).toBe("AUTH_INVALID");
    }
    const none = await openWebSocket(`${forwarding.url}/api/ws`);
    expect(none.ok ? 101 : none.status).toBe(401);
    expect(app.seen).toEqual([]);
    // Control: an assertion bound to the upgrade's own path opens it.
    const opened = await openWebSocket(`${forwarding.url}/api/ws`, { headers: { "outpost-assertion": await assertion("GET", "/api/ws") } });
    expect(opened.ok).toBe(true);
    if (opened.ok) {
      opened.ws.send("whoami");
      expect(JSON.parse((await nextMessage(opened.ws)).data.toString())).toEqual({ hello: "owner@example.com" });
      const reply = nextMessage(opened.ws);
      opened.ws.send(Buffer.from([0, 1, 2, 255]));
      const binary = await reply;
      expect(binary.isBinary).toBe(true);
      expect([...binary.data]).toEqual([0, 1, 2, 255]);
      await closeWebSocket(opened.ws);
    }
  });

  it("only /health is open, from loopback too", async () => {
    const health = await fetch(`${forwarding.url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok", service: "outpost-origin" });
    for (const path of ["/", "/api", "/outpost/events", "/health/x", "/socket.io/?EIO=4&transport=polling"]) {
      await expectRefused(await fetch(`${forwarding.url}${path}`));
    }
    expect(app.seen).toEqual([]);
  });
});

describe("the built-in API's store is untouched by refused requests", () => {
  const bad: [string, AssertionOptions][] = [
    ["expired", { iatOffset: -120 }],
    ["wrong audience", { aud: "x" }],
    ["another key", { key: otherKey("k") }],
  ];

  it.each(bad)("POST /api/projects %s → 401, nothing stored", async (_name, o) => {
    const res = await signedFetch(builtin.url, "/api/projects", { method: "POST", headers: { "content-type": "application/json" }, body: '{"name":"x"}' }, o);
    await expectRefused(res);
    const list = await api<{ projects: unknown[] }>(builtin.url, "GET", "/api/projects");
    expect(list.body.projects).toEqual([]);
  });

  it("an event batch with a bad assertion stores nothing", async () => {
    const events = [presenceEvent({ seq: 1, type: "session_online", sessionId: "s-direct" })];
    await expectRefused(await postEvents(builtin.url, events, { iss: "https://evil.example.com" }));
    await expectRefused(await postEvents(builtin.url, events, { iatOffset: -300 }));
    const one = await api(builtin.url, "GET", "/api/sessions/s-direct");
    expect(one.status).toBe(404);
  });

  it("a user's assertion cannot post events (only the edge's system identity)", async () => {
    const body = JSON.stringify({ events: [presenceEvent({ seq: 1, type: "session_online", sessionId: "s-user" })] });
    const res = await signedFetch(builtin.url, "/outpost/events", { method: "POST", headers: { "content-type": "application/json" }, body }, { body });
    expect(res.status).toBe(403);
    expect((await api(builtin.url, "GET", "/api/sessions/s-user")).status).toBe(404);
  });
});

describe("what the app behind --upstream receives", () => {
  it("no assertion, the verified identity as X-Outpost-*, whatever the client claimed", async () => {
    const res = await signedFetch(
      forwarding.url,
      "/api/who",
      { headers: { "x-outpost-user": "admin", "X-Outpost-Role": "owner", "x-outpost-email": "evil@example.com", "x-outpost-extra": "1" } },
      { sub: "outpost:member@example.com", email: "member@example.com", role: "member" },
    );
    expect(res.status).toBe(200);
    const { headers } = (await res.json()) as { headers: Record<string, string> };
    expect(headers["outpost-assertion"]).toBeUndefined();
    expect(headers["x-outpost-user"]).toBe("outpost:member@example.com");
    expect(headers["x-outpost-email"]).toBe("member@example.com");
    expect(headers["x-outpost-role"]).toBe("member");
    expect(headers["x-outpost-extra"]).toBeUndefined();
    expect(headers.host).toBe(new URL(app.url).host);
  });

  it("hop-by-hop headers stop at the origin, both ways; repeated Set-Cookie headers survive", async () => {
    const res = await rawRequest(forwarding.url, {
      method: "GET",
      target: "/api/hops",
      headers: {
        "outpost-assertion": await assertion("GET", "/api/hops"),
        Connection: "x-drop-me",
        "X-Drop-Me": "1",
        "Keep-Alive": "timeout=9",
        TE: "trailers",
        "Proxy-Authorization": "Basic eDp5",
        "X-Keep-Me": "2",
      },
    });
    expect(res.status).toBe(200);
    const { headers } = JSON.parse(res.body) as { headers: Record<string, string> };
    for (const name of ["x-drop-me", "keep-alive", "te", "proxy-authorization", "outpost-assertion"]) expect(headers[name], name).toBeUndefined();
    expect(headers["x-keep-me"]).toBe("2");
    expect(res.headers["x-app"]).toBe("yes");
    expect(res.headers["x-app-hop"]).toBeUndefined();
    expect(res.headers["keep-alive"]).toBeUndefined();

    const cookies = await signedFetch(forwarding.url, "/api/cookies");
    expect(cookies.headers.getSetCookie()).toEqual(["a=1; Path=/", "b=2; Path=/"]);
  });

  it("an app that is down is a 502 in the standard shape", async () => {
    const dead = await spawnOrigin(["--upstream", "http://127.0.0.1:9"]);
    try {
      const res = await signedFetch(dead.url, "/api/x", { headers: { "x-request-id": "req-down" } });
      expect(res.status).toBe(502);
      expect(await res.json()).toEqual({ error: { code: "UPSTREAM_UNREACHABLE", message: expect.any(String), requestId: "req-down" } });
      const ws = await openWebSocket(`${dead.url}/api/ws`, { headers: { "outpost-assertion": await assertion("GET", "/api/ws") } });
      expect(ws.ok ? 101 : ws.status).toBe(502);
    } finally {
      await dead.stop();
    }
  });
});
