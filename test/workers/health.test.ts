// /health and /ready in workerd, with the origin up, down, and the config broken.
import { exports } from "cloudflare:workers";
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, describe, expect, inject, it, vi } from "vitest";
import worker from "../../worker/index.ts";

async function call(path: string, overrides: Partial<Env> = {}, init?: RequestInit) {
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(`https://outpost.example.com${path}`, init), { ...env, ...overrides }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

describe("/health", () => {
  it("answers 200 without touching the origin", async () => {
    const res = await exports.default.fetch("https://outpost.example.com/health");
    expect(res.status).toBe(200);
    const body = await res.json<{ status: string; version: string; uptime: number; services: Record<string, string> }>();
    expect(body.status).toBe("ok");
    expect(body.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(body.services.config).toBe("ok");
  });

  it("stays 200 with a broken config", async () => {
    const res = await call("/health", { ORIGIN_URL: "not a url" });
    expect(res.status).toBe(200);
    expect((await res.json<{ services: { config: string } }>()).services.config).toBe("invalid");
  });
});

describe("/ready", () => {
  it("is ready when the origin answers", async () => {
    const res = await call("/ready", { ORIGIN_URL: inject("originUrl") });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ready: true, checks: { config: { ok: true }, origin: { ok: true } } });
  });

  it("is 503 when the origin is unreachable", async () => {
    const res = await call("/ready");
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ ready: false, checks: { origin: { ok: false } } });
  });

  it("names a bad setting without echoing its value", async () => {
    const res = await call("/ready", { ORIGIN_URL: "ftp://secret-host.internal" });
    expect(res.status).toBe(503);
    const text = await res.text();
    expect(text).toContain("ORIGIN_URL");
    expect(text).not.toContain("secret-host");
  });
});

describe("/ready's origin check is cached per isolate", () => {
  /** Answers the Worker's /health fetches to `origin` with `status`, and counts them; anything else is refused. */
  function fakeOrigin(origin: string, status: () => number) {
    const seen: string[] = [];
    const spy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input) => {
      const url = String(input instanceof Request ? input.url : input);
      if (!url.startsWith(origin)) throw new Error(`unexpected fetch to ${url}`);
      seen.push(url);
      return new Response("{}", { status: status() });
    });
    return { fetches: () => seen.length, spy };
  }

  afterEach(() => {
    vi.restoreAllMocks();
    vi.useRealTimers();
  });

  it("two /ready calls in a row make one origin fetch, and the second gives the same answer", async () => {
    // An origin no other test uses: the cache is keyed by it.
    const origin = "http://127.0.0.21:8788";
    const fake = fakeOrigin(origin, () => 200);
    const first = await call("/ready", { ORIGIN_URL: origin });
    const second = await call("/ready", { ORIGIN_URL: origin });
    expect([first.status, second.status]).toEqual([200, 200]);
    const [a, b] = [await first.json<{ checks: { origin: unknown } }>(), await second.json<{ checks: { origin: unknown } }>()];
    expect(a.checks.origin).toMatchObject({ ok: true });
    expect(b.checks.origin).toEqual(a.checks.origin);
    expect(fake.fetches()).toBe(1);
  });

  it("keeps a pass for 5 s and a failure for 1 s, so a recovered origin shows within a second", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const start = Date.now();
    let status = 503;
    const up = "http://127.0.0.22:8788";
    const down = "http://127.0.0.23:8788";
    const fake = fakeOrigin("http://127.0.0.2", () => status);
    expect((await call("/ready", { ORIGIN_URL: down })).status).toBe(503);
    status = 200;
    expect((await call("/ready", { ORIGIN_URL: up })).status).toBe(200);
    // Still within 1 s: both answers come from the cache, the failure too.
    vi.setSystemTime(start + 900);
    expect((await call("/ready", { ORIGIN_URL: down })).status).toBe(503);
    expect((await call("/ready", { ORIGIN_URL: up })).status).toBe(200);
    expect(fake.fetches()).toBe(2);
    // Past 1 s the failure is checked again (and the origin is back); the pass is still cached.
    vi.setSystemTime(start + 1100);
    expect((await call("/ready", { ORIGIN_URL: down })).status).toBe(200);
    expect((await call("/ready", { ORIGIN_URL: up })).status).toBe(200);
    expect(fake.fetches()).toBe(3);
    // Past 5 s the pass is checked again too.
    status = 503;
    vi.setSystemTime(start + 5100);
    expect((await call("/ready", { ORIGIN_URL: up })).status).toBe(503);
    expect(fake.fetches()).toBe(4);
  });
});
