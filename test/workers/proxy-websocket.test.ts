// Proxied WebSockets and roles: viewers' upgrades refused or read-only (VIEWER_WEBSOCKET_PATHS), and the sweep that ends sockets whose role went.
import { afterEach, describe, expect, it, vi } from "vitest";
import { SESSION_ENDED } from "../../shared/api-types.ts";
import { getAuthConfig } from "../../shared/settings/index.ts";
import type { Identity } from "../../worker/auth/tokens.ts";
import { relayWebSocket } from "../../worker/proxy/websocket.ts";
import { socketStillAllowed } from "../../worker/routes/gateway.ts";
import { bearer, call, deviceLogin, expectError, jsonInit, makeEnv, mint, tokenFor } from "./auth/helpers.ts";
import { live, spyOrigin } from "./helpers.ts";

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

const upgrade = (path: string, token: string, extra: Partial<Env> = {}) =>
  call(path, { headers: { upgrade: "websocket", authorization: `Bearer ${token}` } }, live(extra));

/** Accepts a client socket and collects what it receives until it closes. */
function client(res: Response) {
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  ws.accept();
  const received: string[] = [];
  let onMessage = () => {};
  ws.addEventListener("message", (e) => {
    received.push(String(e.data));
    onMessage();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason })));
  const next = () => new Promise<string>((resolve) => (onMessage = () => resolve(received.at(-1)!)));
  return { ws, received, closed, next };
}

describe("viewers' upgrades on proxied paths", () => {
  it("are refused with 403 by default, and nothing reaches the origin", async () => {
    const spy = spyOrigin();
    for (const path of ["/api/ws/echo", "/api/ws/events", "/socket.io/?EIO=4&transport=websocket"]) {
      await expectError(await upgrade(path, await tokenFor("viewer")), 403, "FORBIDDEN");
    }
    expect(spy).not.toHaveBeenCalled();
  });

  it("are refused outside VIEWER_WEBSOCKET_PATHS, and members' upgrades are not affected", async () => {
    const only = { VIEWER_WEBSOCKET_PATHS: "/api/ws/events" };
    await expectError(await upgrade("/api/ws/echo", await tokenFor("viewer"), only), 403, "FORBIDDEN");
    await expectError(await upgrade("/api/ws/events/more", await tokenFor("viewer"), only), 403, "FORBIDDEN");
    const member = client(await upgrade("/api/ws/echo", await tokenFor("member"), only));
    const echoed = member.next();
    member.ws.send("hello");
    expect(await echoed).toBe("hello");
    member.ws.close(1000, "done");
  });

  it("under VIEWER_WEBSOCKET_PATHS open read-only: what the origin sends arrives", async () => {
    const viewer = client(await upgrade("/api/ws/events", await tokenFor("viewer"), { VIEWER_WEBSOCKET_PATHS: "/api/ws/*" }));
    const hello = JSON.parse(await viewer.next()) as { type: string; data: { role: string } };
    expect(hello).toMatchObject({ type: "hello", data: { role: "viewer" } });
    viewer.ws.close(1000, "done");
  });

  it("a bad VIEWER_WEBSOCKET_PATHS makes proxied paths answer 503 CONFIG_INVALID", async () => {
    for (const bad of ["api/ws", "/api/../x", "/api//ws"]) {
      await expectError(await upgrade("/api/ws/echo", await tokenFor("member"), { VIEWER_WEBSOCKET_PATHS: bad }), 503, "CONFIG_INVALID");
    }
  });
});

/** A relay whose upstream is one end of a pair this test holds, so what crosses it is observed exactly. */
function relayPair(options: Partial<Parameters<typeof relayWebSocket>[2]> = {}) {
  const [originSide, upstream] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
  originSide.accept();
  const atOrigin: string[] = [];
  originSide.addEventListener("message", (e) => atOrigin.push(String(e.data)));
  const originClosed = new Promise<{ code: number; reason: string }>((resolve) =>
    originSide.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason })),
  );
  const res = relayWebSocket(upstream, new Response(null), { expiresAtMs: Date.now() + 60_000, ...options });
  return { originSide, atOrigin, originClosed, browser: client(res) };
}

describe("the read-only relay", () => {
  it("drops every data frame the client sends and relays what the origin sends", async () => {
    const { originSide, atOrigin, originClosed, browser } = relayPair({ readOnly: true });
    const news = browser.next();
    originSide.send("news for the viewer");
    expect(await news).toBe("news for the viewer");
    browser.ws.send("write attempt");
    browser.ws.send(new Uint8Array([1, 2, 3]));
    // Frames travel in order: anything relayed would reach the origin before the close that follows it.
    browser.ws.close(4000, "bye");
    expect(await originClosed).toEqual({ code: 4000, reason: "bye" });
    expect(atOrigin).toEqual([]);
  });

  it("a writable relay forwards the same frames (the control for the test above)", async () => {
    const { atOrigin, originClosed, browser } = relayPair();
    browser.ws.send("write attempt");
    browser.ws.close(4000, "bye");
    expect(await originClosed).toEqual({ code: 4000, reason: "bye" });
    expect(atOrigin).toEqual(["write attempt"]);
  });

  it("ends both sides with the sweep's reason when the check says the socket may not stay", async () => {
    const { originClosed, browser } = relayPair({ checkEveryMs: 1, stillValid: async () => "role changed to viewer" });
    expect(await browser.closed).toEqual({ code: SESSION_ENDED, reason: "role changed to viewer" });
    expect(await originClosed).toEqual({ code: SESSION_ENDED, reason: "role changed to viewer" });
  });
});

describe("the 30 s sweep of open sockets", () => {
  const EMAIL = "demoted.member@example.com";
  const owner = async () => ({ authorization: `Bearer ${await tokenFor("owner")}` });
  const grant = async (role: string | null) => {
    const path = `/api/access/${encodeURIComponent(EMAIL)}`;
    const res = role ? await call(path, jsonInit({ role }, await owner(), "PUT")) : await call(path, { method: "DELETE", ...bearer(await tokenFor("owner")) });
    expect(res.status).toBe(200);
  };
  const auth = () => {
    const result = getAuthConfig(makeEnv());
    if (!result.ok) throw new Error("test auth config invalid");
    return result.auth;
  };
  const identity = (deviceId: string | null = null): Identity => ({
    sub: `outpost:${EMAIL}`,
    email: EMAIL,
    role: "member",
    provider: "outpost",
    deviceId,
    exp: Math.floor(Date.now() / 1000) + 900,
  });

  it("a member demoted to viewer loses write sockets, keeps read-only ones, and loses both when the grant goes", async () => {
    await grant("member");
    expect(await socketStillAllowed(makeEnv(), auth(), identity(), false)).toBe(true);
    await grant("viewer");
    expect(await socketStillAllowed(makeEnv(), auth(), identity(), false)).toBe("role changed to viewer");
    expect(await socketStillAllowed(makeEnv(), auth(), identity(), true)).toBe(true);
    await grant(null);
    expect(await socketStillAllowed(makeEnv(), auth(), identity(), true)).toBe("access removed");
  });

  it("a revoked device's socket ends", async () => {
    const tokens = await deviceLogin("member");
    const member: Identity = { ...identity(tokens.device_id), email: "member@example.com", sub: "outpost:member@example.com" };
    expect(await socketStillAllowed(makeEnv(), auth(), member, false)).toBe(true);
    expect((await call(`/api/devices/${tokens.device_id}`, { method: "DELETE", ...bearer(await tokenFor("owner")) })).status).toBe(200);
    expect(await socketStillAllowed(makeEnv(), auth(), member, false)).toBe("session revoked");
  });

  it("through the gateway: a demoted member's open socket is closed at the next sweep", async () => {
    await grant("member");
    const token = await mint({ sub: `outpost:${EMAIL}`, email: EMAIL }, { ttl: 900 });
    // Fake timers from before the upgrade, so the relay's 30 s check is one the test can advance to.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const socket = client(await upgrade("/api/ws/echo", token));
    const echoed = socket.next();
    socket.ws.send("still a member");
    expect(await echoed).toBe("still a member");
    await grant("viewer");
    await vi.advanceTimersByTimeAsync(30_000);
    expect(await socket.closed).toEqual({ code: SESSION_ENDED, reason: "role changed to viewer" });
    await grant(null);
  });
});
