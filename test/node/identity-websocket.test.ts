// Proxied WebSockets and identity over real sockets: 401 before any 101, single-use path-bound tickets, Origin rule, close 4401 at expiry.
import { decodeJwt } from "jose";
import type WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer } from "../support/http-client.ts";
import { mintAccessToken, OWNER } from "../support/identity.ts";
import { startStack, TEST_VARS, type Stack } from "../support/stack.ts";
import { closeWebSocket, nextMessage, openWebSocket, type WsHandshake } from "../support/ws-client.ts";

/** The web app's own origin (PUBLIC_URL): the page a browser would open the socket from. */
const APP_ORIGIN = "http://localhost:8787";
const ECHO = "/api/ws/echo";

interface ErrorBody {
  error: { code: string; message: string; requestId: string };
}

let stack: Stack;
let ownerToken: string;

beforeAll(async () => {
  stack = await startStack();
  ownerToken = await stack.mintToken(OWNER);
});

afterAll(async () => {
  await stack?.stop();
});

/** POST /auth/ws-ticket as the holder of `token`; the single-use ticket a browser puts in `?ticket=`. */
async function ticketFor(path: string, token = ownerToken): Promise<string> {
  const res = await fetch(`${stack.edgeUrl}/auth/ws-ticket`, {
    method: "POST",
    headers: { ...bearer(token), "content-type": "application/json", Origin: APP_ORIGIN },
    body: JSON.stringify({ path }),
  });
  expect(res.status).toBe(200);
  expect(res.headers.get("cache-control")).toBe("no-store");
  const body = (await res.json()) as { ticket: string; expires_in: number };
  expect(body.expires_in).toBeGreaterThan(0);
  expect(body.expires_in).toBeLessThanOrEqual(60);
  return body.ticket;
}

const withTicket = (ticket: string, path = ECHO) => `${stack.edgeUrl}${path}?ticket=${encodeURIComponent(ticket)}`;

/** Asserts the upgrade was refused with an HTTP answer (never a 101) and returns its status and error code. */
function refused(handshake: WsHandshake): { status: number; code: string } {
  if (handshake.ok) {
    handshake.ws.terminate();
    throw new Error("the upgrade was accepted");
  }
  const body = JSON.parse(handshake.body) as ErrorBody;
  expect(body.error.requestId).toBe(handshake.headers["x-request-id"]);
  return { status: handshake.status, code: body.error.code };
}

async function expectEcho(ws: WebSocket, text: string) {
  ws.send(text);
  const reply = await nextMessage(ws);
  expect(reply.isBinary).toBe(false);
  expect(reply.data.toString("utf8")).toBe(text);
}

/** Resolves when `ws` closes, with the code, the reason and the moment (ms since the epoch). */
function closed(ws: WebSocket): Promise<{ code: number; reason: string; at: number }> {
  return new Promise((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: reason.toString(), at: Date.now() })));
}

describe("authentication on the upgrade", () => {
  it("an upgrade without credentials is refused with 401 before any 101", async () => {
    const handshake = await openWebSocket(`${stack.edgeUrl}${ECHO}`, { origin: APP_ORIGIN });
    expect(refused(handshake)).toEqual({ status: 401, code: "AUTH_REQUIRED" });
    if (!handshake.ok) expect(handshake.headers["www-authenticate"]).toMatch(/^Bearer\b/);
  });

  it("a CLI can authenticate the upgrade with a bearer header", async () => {
    const handshake = await openWebSocket(`${stack.edgeUrl}${ECHO}`, { bearer: ownerToken });
    if (!handshake.ok) throw new Error(`upgrade refused: ${handshake.status} ${handshake.body}`);
    try {
      await expectEcho(handshake.ws, "cli");
    } finally {
      await closeWebSocket(handshake.ws);
    }
  });

  it("a ticket cannot be had without signing in", async () => {
    const res = await fetch(`${stack.edgeUrl}/auth/ws-ticket`, {
      method: "POST",
      headers: { "content-type": "application/json", Origin: APP_ORIGIN },
      body: JSON.stringify({ path: ECHO }),
    });
    expect(res.status).toBe(401);
    expect(((await res.json()) as ErrorBody).error.code).toBe("AUTH_REQUIRED");
  });
});

describe("single-use WebSocket tickets (how a browser authenticates an upgrade)", () => {
  it("a ticket for the path opens an echoing socket from the app's origin, once", async () => {
    const ticket = await ticketFor(ECHO);
    const first = await openWebSocket(withTicket(ticket), { headers: { Origin: APP_ORIGIN } });
    if (!first.ok) throw new Error(`upgrade refused: ${first.status} ${first.body}`);
    try {
      await expectEcho(first.ws, "hello through a ticket");
      await expectEcho(first.ws, "wörld ✓");
    } finally {
      await closeWebSocket(first.ws);
    }

    const second = await openWebSocket(withTicket(ticket), { headers: { Origin: APP_ORIGIN } });
    expect(refused(second)).toEqual({ status: 401, code: "AUTH_INVALID" });
  });

  it("a ticket for another path is refused with 401", async () => {
    const ticket = await ticketFor("/api/ws/other");
    const handshake = await openWebSocket(withTicket(ticket), { headers: { Origin: APP_ORIGIN } });
    expect(refused(handshake)).toEqual({ status: 401, code: "AUTH_INVALID" });
  });

  it("a foreign Origin is refused with 403, even with a fresh ticket", async () => {
    const ticket = await ticketFor(ECHO);
    const handshake = await openWebSocket(withTicket(ticket), { headers: { Origin: "https://evil.example.com" } });
    expect(refused(handshake)).toEqual({ status: 403, code: "FORBIDDEN_ORIGIN" });
  });

  it("a ticket is no credential for a plain HTTP request", async () => {
    const ticket = await ticketFor("/api/echo/plain");
    const res = await fetch(withTicket(ticket, "/api/echo/plain"));
    expect(res.status).toBe(401);
    expect(((await res.json()) as ErrorBody).error.code).toBe("AUTH_REQUIRED");
  });

  it("a ticket bound to a path with a query or traversal is not issued", async () => {
    for (const path of ["/api/ws/echo?x=1", "/api/../auth/me", "api/ws/echo"]) {
      const res = await fetch(`${stack.edgeUrl}/auth/ws-ticket`, {
        method: "POST",
        headers: { ...bearer(ownerToken), "content-type": "application/json" },
        body: JSON.stringify({ path }),
      });
      expect(res.status, path).toBe(400);
      await res.body?.cancel();
    }
  });
});

describe("a socket lives no longer than the credential that opened it", () => {
  it("the edge closes sockets with 4401 shortly after their token expires; a longer-lived one stays open", { timeout: 30_000 }, async () => {
    const shortToken = await mintAccessToken(TEST_VARS.PUBLIC_URL!, OWNER, { ttl: 4 });
    const expiresAt = decodeJwt(shortToken).exp! * 1000;

    // The same expiry governs a bearer upgrade and a ticket minted with that token.
    const byBearer = await openWebSocket(`${stack.edgeUrl}${ECHO}`, { bearer: shortToken });
    const byTicket = await openWebSocket(withTicket(await ticketFor(ECHO, shortToken)), { headers: { Origin: APP_ORIGIN } });
    const control = await openWebSocket(`${stack.edgeUrl}${ECHO}`, { bearer: ownerToken });
    for (const h of [byBearer, byTicket, control]) if (!h.ok) throw new Error(`upgrade refused: ${h.status} ${h.body}`);
    if (!byBearer.ok || !byTicket.ok || !control.ok) return;

    try {
      const closes = [closed(byBearer.ws), closed(byTicket.ws)];
      // Open and working before the expiry, then left idle.
      await expectEcho(byBearer.ws, "before expiry");
      await expectEcho(byTicket.ws, "before expiry");
      expect(Date.now()).toBeLessThan(expiresAt);

      for (const close of await Promise.all(closes)) {
        expect(close.code).toBe(4401);
        expect(close.at).toBeGreaterThanOrEqual(expiresAt - 1_000);
        expect(close.at - expiresAt).toBeLessThan(3_000);
      }

      // Not a generic idle timeout: the socket opened with a 15-minute token is still open and echoing.
      await expectEcho(control.ws, "still here");
    } finally {
      for (const h of [byBearer, byTicket]) h.ws.terminate();
      await closeWebSocket(control.ws);
    }
  });

  it("the expired token cannot open a new socket", { timeout: 20_000 }, async () => {
    const shortToken = await mintAccessToken(TEST_VARS.PUBLIC_URL!, OWNER, { ttl: 1 });
    const expiresAt = decodeJwt(shortToken).exp! * 1000;
    // The edge allows 5 s of clock skew when verifying; wait past it.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiresAt + 6_000 - Date.now())));
    const handshake = await openWebSocket(`${stack.edgeUrl}${ECHO}`, { bearer: shortToken });
    expect(refused(handshake)).toEqual({ status: 401, code: "AUTH_INVALID" });
  });
});
