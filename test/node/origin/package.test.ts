// verifyOutpostRequest in someone else's app ("outpost/origin"): the edge's JWKS fetched and cached, Hono and node:http adapters.
import { getRequestListener } from "@hono/node-server";
import { Hono } from "hono";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { JWK } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createOutpostVerifier, outpostHono, outpostMiddleware, verifyOutpostRequest, OutpostVerifyError, type OutpostRequest } from "../../../origin/index.ts";
import { TEST_SIGNING_KEY } from "../../support/identity.ts";
import { publicJwk } from "../../support/spawn-origin.ts";
import { assertion, ISSUER, otherKey } from "./helpers.ts";

interface FakeEdge {
  url: string;
  fetches(): number;
  setKeys(keys: JWK[]): void;
  close(): Promise<void>;
}

/** Serves /.well-known/jwks.json like the edge, counting fetches. */
async function startFakeEdge(keys: JWK[]): Promise<FakeEdge> {
  let current = keys;
  let count = 0;
  const server = createServer((req, res) => {
    if (req.url !== "/.well-known/jwks.json") return void res.writeHead(404).end();
    count++;
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: current }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    fetches: () => count,
    setKeys: (k) => void (current = k),
    close: () => new Promise((r) => server.close(() => r())),
  };
}

function request(url: string, method: string, token?: string): Request {
  return new Request(url, { method, headers: token ? { "outpost-assertion": token } : {} });
}

let edge: FakeEdge;
beforeAll(async () => {
  edge = await startFakeEdge([publicJwk(TEST_SIGNING_KEY)]);
});
afterAll(() => edge?.close());

describe("verifyOutpostRequest with the edge's JWKS", () => {
  it("fetches the JWKS once, then serves from cache; an unknown kid refetches at most once per cooldown", async () => {
    const options = { edgeUrl: edge.url, issuer: ISSUER, audience: "origin", jwksCooldownMs: 400 };
    const before = edge.fetches();
    for (let i = 0; i < 5; i++) {
      const who = await verifyOutpostRequest(request("http://o.test/api/x?i=1", "GET", await assertion("GET", "/api/x?i=1")), options);
      expect(who).toEqual({ sub: "outpost:owner@example.com", email: "owner@example.com", role: "owner" });
    }
    expect(edge.fetches() - before).toBe(1);

    const rotated = otherKey("rotated-1");
    const token = () => assertion("GET", "/api/x", { key: rotated });
    // Within the cooldown an unknown kid does not refetch: refused.
    await expect(verifyOutpostRequest(request("http://o.test/api/x", "GET", await token()), options)).rejects.toBeInstanceOf(OutpostVerifyError);
    expect(edge.fetches() - before).toBe(1);
    // The edge rotates; after the cooldown one refetch picks the new key up.
    edge.setKeys([publicJwk(rotated), publicJwk(TEST_SIGNING_KEY)]);
    await new Promise((r) => setTimeout(r, 500));
    await expect(verifyOutpostRequest(request("http://o.test/api/x", "GET", await token()), options)).resolves.toMatchObject({ role: "owner" });
    expect(edge.fetches() - before).toBe(2);
    // A stranger's kid right after: no second refetch.
    const stranger = await assertion("GET", "/api/x", { key: otherKey("stranger") });
    await expect(verifyOutpostRequest(request("http://o.test/api/x", "GET", stranger), options)).rejects.toThrow(OutpostVerifyError);
    expect(edge.fetches() - before).toBe(2);
  });

  it("fails closed when the JWKS cannot be fetched", async () => {
    const options = { edgeUrl: "http://127.0.0.1:9", issuer: ISSUER };
    const err = await verifyOutpostRequest(request("http://o.test/api/x", "GET", await assertion("GET", "/api/x")), options).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OutpostVerifyError);
    expect((err as OutpostVerifyError).status).toBe(401);
  });

  it("shares the replay cache between calls with equal options", async () => {
    const token = await assertion("GET", "/api/r");
    await verifyOutpostRequest(request("http://o.test/api/r", "GET", token), { edgeUrl: edge.url, issuer: ISSUER });
    await expect(verifyOutpostRequest(request("http://o.test/api/r", "GET", token), { edgeUrl: edge.url, issuer: ISSUER })).rejects.toThrow(OutpostVerifyError);
  });
});

describe("the replay cache", () => {
  it("when full of live ids it refuses new assertions rather than forget one", async () => {
    const verify = createOutpostVerifier({ issuer: ISSUER, jwks: { keys: [publicJwk(TEST_SIGNING_KEY)] }, replayCacheSize: 3 });
    for (let i = 0; i < 3; i++) await verify({ method: "GET", pathAndQuery: "/a", assertion: await assertion("GET", "/a") });
    const err = await verify({ method: "GET", pathAndQuery: "/a", assertion: await assertion("GET", "/a") }).catch((e: unknown) => e);
    expect((err as OutpostVerifyError).reason).toBe("replayed");
  });
});

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe("adapters hand the verified identity to handlers", () => {
  it("Hono: c.get('outpost'), 401 JSON otherwise, bound to the full path even in a sub-app", async () => {
    const app = new Hono<{ Variables: { outpost: { sub: string; email: string; role: string } } }>();
    const sub = new Hono<{ Variables: { outpost: { sub: string; email: string; role: string } } }>();
    sub.get("/me", (c) => c.json(c.get("outpost")));
    app.use("*", outpostHono({ edgeUrl: edge.url, issuer: ISSUER }));
    app.route("/app", sub);
    const server = createServer(getRequestListener(app.fetch));
    const url = await listen(server);
    try {
      const ok = await fetch(`${url}/app/me?q=1`, {
        headers: { "outpost-assertion": await assertion("GET", "/app/me?q=1", { role: "viewer", email: "v@example.com" }) },
      });
      expect(ok.status).toBe(200);
      expect(await ok.json()).toMatchObject({ email: "v@example.com", role: "viewer" });
      const bad = await fetch(`${url}/app/me`, { headers: { "x-request-id": "r-1", "outpost-assertion": await assertion("GET", "/me") } });
      expect(bad.status).toBe(401);
      expect(await bad.json()).toEqual({ error: { code: "AUTH_INVALID", message: expect.any(String), requestId: "r-1" } });
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it("node:http / Express-style: req.outpost, 401 JSON otherwise", async () => {
    const guard = outpostMiddleware({ edgeUrl: edge.url, issuer: ISSUER });
    const server = createServer((req: OutpostRequest, res) =>
      guard(req, res, () => {
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(req.outpost));
      }),
    );
    const url = await listen(server);
    try {
      const ok = await fetch(`${url}/hook`, { method: "POST", body: "x", headers: { "outpost-assertion": await assertion("POST", "/hook") } });
      expect(await ok.json()).toMatchObject({ sub: "outpost:owner@example.com", role: "owner" });
      const bad = await fetch(`${url}/hook`, { method: "POST", body: "x", headers: { "outpost-assertion": await assertion("GET", "/hook") } });
      expect(bad.status).toBe(401);
      expect(((await bad.json()) as { error: { code: string } }).error.code).toBe("AUTH_INVALID");
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
