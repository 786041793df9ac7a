// /health and /ready in workerd, with the origin up, down, and the config broken.
import { exports } from "cloudflare:workers";
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, inject, it } from "vitest";
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
