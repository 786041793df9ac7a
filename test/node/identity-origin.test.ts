// Identity at the origin over real sockets: a verifiable signed assertion arrives instead of credentials; anonymous requests reach nothing.
import { generateKeyPairSync } from "node:crypto";
import { createRemoteJWKSet, decodeProtectedHeader, importJWK, jwtVerify, SignJWT, type JWK } from "jose";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { outpostSubject } from "../../shared/enrollment.ts";
import { bearer, rawRequest } from "../support/http-client.ts";
import { MEMBER, OWNER, VIEWER } from "../support/identity.ts";
import { startStack, type Stack } from "../support/stack.ts";
import { startUpstream, type ReceivedRequest, type Upstream } from "../support/upstream.ts";
import { openWebSocket } from "../support/ws-client.ts";

const ISSUER = "http://localhost:8787";

interface ErrorBody {
  error: { code: string; message: string; requestId: string };
}

let upstream: Upstream;
let stack: Stack;
let ownerToken: string;
let jwks: ReturnType<typeof createRemoteJWKSet>;

beforeAll(async () => {
  upstream = await startUpstream();
  stack = await startStack({ originUrl: upstream.url });
  ownerToken = await stack.mintToken(OWNER);
  jwks = createRemoteJWKSet(new URL(`${stack.edgeUrl}/.well-known/jwks.json`));
});

afterAll(async () => {
  await stack?.stop();
  await upstream?.close();
});

beforeEach(() => upstream.reset());

/** Verifies what reached the origin the way an origin must, and returns the assertion's header and claims. */
async function verifyAtOrigin(received: ReceivedRequest | undefined) {
  expect(received, "a request reached the origin").toBeDefined();
  const assertion = received!.headers["outpost-assertion"];
  expect(typeof assertion).toBe("string");
  const { payload, protectedHeader } = await jwtVerify(assertion as string, jwks, {
    algorithms: ["ES256"],
    typ: "outpost-assertion+jwt",
    issuer: ISSUER,
    audience: "origin",
    requiredClaims: ["exp", "iat", "jti", "sub", "htm", "htu"],
  });
  return { payload, protectedHeader };
}

/** Anything that slipped through gets time to land at the upstream before the check. */
async function expectNothingReachedOrigin() {
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(upstream.requests.map((r) => `${r.method} ${r.target}`)).toEqual([]);
  expect(upstream.connections()).toBe(0);
}

function expectErrorShape(body: unknown, code: string, requestId: string | null | undefined) {
  expect(requestId).toBeTruthy();
  expect(body).toEqual({ error: { code, message: expect.any(String), requestId } });
}

describe("the origin receives a verifiable assertion instead of the client's credentials", () => {
  it("a GET carries an ES256 assertion for the owner, bound to its method and path+query", async () => {
    const target = "/api/things/caf%C3%A9?x=1&y=a%20b";
    const res = await fetch(`${stack.edgeUrl}${target}`, {
      headers: { ...bearer(ownerToken), Cookie: "outpost_refresh=opr_secret; theme=dark; outpost_scoped=scoped.jwt.x; lang=en" },
    });
    expect(res.status).toBe(200);
    await res.body?.cancel();
    expect(upstream.requests).toHaveLength(1);
    const received = upstream.requests[0]!;
    expect(received.target).toBe(target);

    const { payload, protectedHeader } = await verifyAtOrigin(received);
    expect(protectedHeader).toMatchObject({ alg: "ES256", typ: "outpost-assertion+jwt", kid: expect.any(String) });
    expect(payload).toMatchObject({
      iss: ISSUER,
      aud: "origin",
      sub: outpostSubject(OWNER),
      email: OWNER,
      role: "owner",
      htm: "GET",
      htu: target,
    });
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(60);
    expect(payload.exp! * 1000).toBeGreaterThan(Date.now());
    expect(payload.jti).toEqual(expect.any(String));

    // The client's credentials stop at the edge; its other cookies pass.
    expect(received.headers).not.toHaveProperty("authorization");
    expect(received.headers.cookie).toBe("theme=dark; lang=en");
    expect(JSON.stringify(received.headers)).not.toContain(ownerToken);
  });

  it("a POST's assertion names POST; a Cookie header holding only Outpost cookies is dropped entirely", async () => {
    const res = await fetch(`${stack.edgeUrl}/api/items`, {
      method: "POST",
      headers: { ...bearer(ownerToken), "content-type": "application/json", Cookie: "outpost_refresh=opr_secret" },
      body: JSON.stringify({ a: 1 }),
    });
    expect(res.status).toBe(200);
    await res.body?.cancel();
    const received = upstream.requests[0]!;
    expect(received).toMatchObject({ method: "POST", target: "/api/items", bodyBytes: 7, complete: true });
    const { payload } = await verifyAtOrigin(received);
    expect(payload).toMatchObject({ htm: "POST", htu: "/api/items" });
    expect(received.headers).not.toHaveProperty("authorization");
    expect(received.headers).not.toHaveProperty("cookie");
  });

  it("every request gets its own assertion (unique jti), even the same request repeated", async () => {
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${stack.edgeUrl}/api/same`, { headers: bearer(ownerToken) });
      expect(res.status).toBe(200);
      await res.body?.cancel();
    }
    const jtis = await Promise.all(upstream.requests.map(async (r) => (await verifyAtOrigin(r)).payload.jti));
    expect(jtis).toHaveLength(5);
    expect(new Set(jtis).size).toBe(5);
  });

  it("a forged assertion from the client is replaced by the edge's own", async () => {
    const res = await fetch(`${stack.edgeUrl}/api/forged`, { headers: { ...bearer(ownerToken), "Outpost-Assertion": "forged.jwt.value" } });
    expect(res.status).toBe(200);
    await res.body?.cancel();
    expect(upstream.requests[0]!.headers["outpost-assertion"]).not.toBe("forged.jwt.value");
    await verifyAtOrigin(upstream.requests[0]);
  });

  it.each([
    [MEMBER, "member"],
    [VIEWER, "viewer"],
  ])("%s is asserted with role %s", async (email, role) => {
    const res = await fetch(`${stack.edgeUrl}/api/whoami`, { headers: bearer(await stack.mintToken(email)) });
    expect(res.status).toBe(200);
    await res.body?.cancel();
    const { payload } = await verifyAtOrigin(upstream.requests[0]);
    expect(payload).toMatchObject({ sub: outpostSubject(email), email, role });
  });

  it("the published JWKS holds public keys only, and the assertion's kid is among them", async () => {
    const res = await fetch(`${stack.edgeUrl}/.well-known/jwks.json`);
    expect(res.status).toBe(200);
    const { keys } = (await res.json()) as { keys: JWK[] };
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) expect(key).not.toHaveProperty("d");
    await (await fetch(`${stack.edgeUrl}/api/kid`, { headers: bearer(ownerToken) })).body?.cancel();
    const { kid } = decodeProtectedHeader(upstream.requests[0]!.headers["outpost-assertion"] as string);
    expect(keys.map((k) => k.kid)).toContain(kid);
  });
});

describe("without valid credentials nothing reaches the origin", () => {
  it("a GET without credentials is 401 AUTH_REQUIRED with WWW-Authenticate: Bearer", async () => {
    const res = await fetch(`${stack.edgeUrl}/api/echo/anon`);
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toMatch(/^Bearer\b/);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expectErrorShape(await res.json(), "AUTH_REQUIRED", res.headers.get("x-request-id"));
    await expectNothingReachedOrigin();
  });

  it("a POST with a body and no credentials is refused the same way, its body never forwarded", async () => {
    const res = await fetch(`${stack.edgeUrl}/api/items`, { method: "POST", body: "x".repeat(10_000) });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toMatch(/^Bearer\b/);
    expectErrorShape(await res.json(), "AUTH_REQUIRED", res.headers.get("x-request-id"));
    await expectNothingReachedOrigin();
  });

  it("a valid token in ?access_token= is not accepted", async () => {
    const res = await fetch(`${stack.edgeUrl}/api/echo/query?access_token=${ownerToken}`);
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toMatch(/^Bearer\b/);
    expectErrorShape(await res.json(), "AUTH_REQUIRED", res.headers.get("x-request-id"));
    await expectNothingReachedOrigin();
  });

  it.each([
    ["a Basic header", "Basic b3duZXI6cGFzc3dvcmQ="],
    ["a bearer that is not a JWT", "Bearer not-a-token"],
    ["a bearer token whose signature was tampered with", "tampered"],
  ])("%s is 401 AUTH_INVALID with error=invalid_token", async (_label, authorization) => {
    const value = authorization === "tampered" ? `Bearer ${ownerToken.slice(0, -4)}AAAA` : authorization;
    const res = await fetch(`${stack.edgeUrl}/api/echo/bad`, { headers: { Authorization: value } });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toMatch(/^Bearer\b.*error="invalid_token"/);
    expectErrorShape(await res.json(), "AUTH_INVALID", res.headers.get("x-request-id"));
    await expectNothingReachedOrigin();
  });

  it("a well-formed token signed by a key the edge does not know is 401", async () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const jwk = privateKey.export({ format: "jwk" }) as JWK;
    const now = Math.floor(Date.now() / 1000);
    const forged = await new SignJWT({ email: OWNER })
      .setProtectedHeader({ alg: "ES256", typ: "at+jwt", kid: "test-stack" })
      .setIssuer(ISSUER)
      .setAudience("outpost")
      .setSubject(outpostSubject(OWNER))
      .setJti(crypto.randomUUID())
      .setIssuedAt(now)
      .setExpirationTime(now + 600)
      .sign(await importJWK(jwk, "ES256"));
    const res = await fetch(`${stack.edgeUrl}/api/echo/forged`, { headers: bearer(forged) });
    expect(res.status).toBe(401);
    expect(((await res.json()) as ErrorBody).error.code).toBe("AUTH_INVALID");
    await expectNothingReachedOrigin();
  });

  it("a valid token for someone not on the access list is 403 and not forwarded", async () => {
    const res = await fetch(`${stack.edgeUrl}/api/echo/stranger`, { headers: bearer(await stack.mintToken("stranger@example.com")) });
    expect(res.status).toBe(403);
    expectErrorShape(await res.json(), "FORBIDDEN", res.headers.get("x-request-id"));
    await expectNothingReachedOrigin();
  });

  it("a viewer's write is 403 and not forwarded", async () => {
    const res = await fetch(`${stack.edgeUrl}/api/items`, { method: "POST", headers: bearer(await stack.mintToken(VIEWER)), body: "{}" });
    expect(res.status).toBe(403);
    expectErrorShape(await res.json(), "FORBIDDEN", res.headers.get("x-request-id"));
    await expectNothingReachedOrigin();
  });

  it("an anonymous request sent raw (no fetch normalisation) is refused too", async () => {
    const res = await rawRequest(stack.edgeUrl, { method: "DELETE", target: "/api/items/1" });
    expect(res.status).toBe(401);
    expectErrorShape(JSON.parse(res.body), "AUTH_REQUIRED", res.headers["x-request-id"]);
    await expectNothingReachedOrigin();
  });

  it("a WebSocket upgrade without credentials is 401 and opens no connection to the origin", async () => {
    const handshake = await openWebSocket(`${stack.edgeUrl}/api/ws/echo`, { timeoutMs: 5_000 });
    expect(handshake.ok).toBe(false);
    if (handshake.ok) return;
    expect(handshake.status).toBe(401);
    expect(handshake.headers["www-authenticate"]).toMatch(/^Bearer\b/);
    await expectNothingReachedOrigin();
  });
});
