// The real origin stopped behind the real Worker: 502 ORIGIN_UNREACHABLE without internals, /ready 503, recovery.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fetchWithBearer } from "../support/http-client.ts";
import { OWNER } from "../support/identity.ts";
import { spawnOrigin, type SpawnedOrigin } from "../support/spawn-origin.ts";
import { startStack, type Stack } from "../support/stack.ts";
import { openWebSocket } from "../support/ws-client.ts";

interface ErrorBody {
  error: { code: string; message: string; requestId: string };
}

let stack: Stack;
let restarted: SpawnedOrigin | null = null;
let token: string;
/** fetch() as the owner: the proxy only forwards authenticated requests. */
const fetchAs = fetchWithBearer(() => token);

beforeAll(async () => {
  stack = await startStack();
  token = await stack.mintToken(OWNER);
});

afterAll(async () => {
  await stack?.stop();
  await restarted?.stop();
});

/** The origin's address and low-level error text must never reach a client. */
function expectNoInternals(raw: string) {
  // Request ids are random hex: drop them so a port number cannot match inside one by chance.
  const text = raw.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, "<id>");
  const { host, port } = new URL(stack.originUrl);
  expect(text).not.toContain(host);
  expect(text).not.toContain(port);
  expect(text).not.toMatch(/ECONNREFUSED|connect|fetch failed|TypeError|internal error/i);
}

// The tests run in order: up, then stopped, then restarted on the same port.
describe("origin lifecycle", () => {
  it("while the origin is up, requests are proxied and /ready's origin check passes", async () => {
    const res = await fetchAs(`${stack.edgeUrl}/api/echo/up`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { path: string }).path).toBe("/api/echo/up");
    // Only the origin check: /ready also checks settings (e.g. auth) that this stack does not provide.
    const ready = await fetch(`${stack.edgeUrl}/ready`);
    expect(await ready.json()).toMatchObject({ checks: { origin: { ok: true } } });
  });

  it("after the origin stops, GET and POST get 502 ORIGIN_UNREACHABLE in the standard shape", async () => {
    await stack.origin!.stop();
    for (const init of [{ method: "GET" }, { method: "POST", body: JSON.stringify({ a: 1 }) }]) {
      const res = await fetchAs(`${stack.edgeUrl}/api/echo/down`, init);
      expect(res.status, init.method).toBe(502);
      expect(res.headers.get("content-type")).toMatch(/^application\/json/);
      const text = await res.text();
      const body = JSON.parse(text) as ErrorBody;
      expect(body).toEqual({
        error: { code: "ORIGIN_UNREACHABLE", message: expect.any(String), requestId: res.headers.get("x-request-id") },
      });
      expectNoInternals(text);
    }
  });

  it("a WebSocket upgrade to a stopped origin is refused with 502, not left hanging", async () => {
    const handshake = await openWebSocket(`${stack.edgeUrl}/api/ws/echo`, { bearer: token, timeoutMs: 5_000 });
    expect(handshake.ok).toBe(false);
    if (handshake.ok) return;
    expect(handshake.status).toBe(502);
    expect((JSON.parse(handshake.body) as ErrorBody).error.code).toBe("ORIGIN_UNREACHABLE");
    expectNoInternals(handshake.body);
  });

  it("/health stays 200 and /ready turns 503 without naming the origin's address", async () => {
    const health = await fetch(`${stack.edgeUrl}/health`);
    expect(health.status).toBe(200);
    await health.body?.cancel();

    // /ready keeps a passing origin check for a few seconds (worker/routes/health.ts): it turns once that runs out.
    let text = "";
    await expect
      .poll(
        async () => {
          const ready = await fetch(`${stack.edgeUrl}/ready`);
          text = await ready.text();
          return ready.status;
        },
        { timeout: 15_000, interval: 250 },
      )
      .toBe(503);
    expect(JSON.parse(text)).toMatchObject({ ready: false, checks: { origin: { ok: false } } });
    expectNoInternals(text);
  });

  it("once the origin is back on the same port, the gateway recovers without a restart", async () => {
    const { port } = new URL(stack.originUrl);
    restarted = await spawnOrigin(["--port", port]);
    expect(restarted.url).toBe(stack.originUrl);
    const res = await fetchAs(`${stack.edgeUrl}/api/echo/back`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { path: string }).path).toBe("/api/echo/back");
    // A failed check is kept for a second at most.
    await expect
      .poll(async () => ((await (await fetch(`${stack.edgeUrl}/ready`)).json()) as { checks: { origin: { ok: boolean } } }).checks.origin.ok, {
        timeout: 15_000,
        interval: 250,
      })
      .toBe(true);
  });
});
