// Per-IP rate limits on the unauthenticated auth endpoints (AUTH_LIMITER, 30 a minute per IP and endpoint).
import { describe, expect, it } from "vitest";
import { call, DEVICE_GRANT, errorOf, formInit, freshIp, jsonInit, sql } from "./helpers.ts";

const LIMIT = 30;

/**
 * Calls until the first 429 and returns how many calls passed before it. Windows are aligned to the
 * wall clock, so a window may roll over mid-run: allow up to two windows' worth before giving up.
 */
async function hammer(send: () => Promise<Response>): Promise<{ passed: number; refused: Response }> {
  for (let i = 0; i <= 2 * LIMIT + 1; i++) {
    const res = await send();
    if (res.status === 429) return { passed: i, refused: res };
    await res.body?.cancel();
  }
  throw new Error(`no 429 after ${2 * LIMIT + 2} calls`);
}

async function expectRefusal(res: Response): Promise<void> {
  expect(res.status).toBe(429);
  expect(res.headers.get("retry-after")).toBe("60");
  expect((await errorOf(res)).code).toBe("RATE_LIMITED");
}

describe("AUTH_LIMITER", () => {
  it("limits /auth/device/code per IP, stores nothing once limited, and leaves other IPs alone", async () => {
    const ip = freshIp();
    const { passed, refused } = await hammer(() => call("/auth/device/code", jsonInit({ hostname: "h" }, { "cf-connecting-ip": ip })));
    expect(passed).toBeGreaterThanOrEqual(LIMIT);
    expect(passed).toBeLessThanOrEqual(2 * LIMIT);
    await expectRefusal(refused);
    const stored = await sql<{ n: number }>("SELECT count(*) AS n FROM device_codes WHERE ip = ?", ip);
    expect(stored[0]!.n).toBe(passed);
    await expectRefusal(await call("/auth/device/code", jsonInit({}, { "cf-connecting-ip": ip })));
    expect((await call("/auth/device/code", jsonInit({}, { "cf-connecting-ip": freshIp() }))).status).toBe(200);
  });

  it("keeps a separate budget for the token endpoint, so a limited IP can still finish its login", async () => {
    const ip = freshIp();
    const first = await call("/auth/device/code", jsonInit({}, { "cf-connecting-ip": ip }));
    const { device_code } = await first.json<{ device_code: string }>();
    await hammer(() => call("/auth/device/code", jsonInit({}, { "cf-connecting-ip": ip })));
    const pollRes = await call("/auth/device/token", formInit({ grant_type: DEVICE_GRANT, device_code }, { "cf-connecting-ip": ip }));
    expect(pollRes.status).toBe(400);
    expect((await errorOf(pollRes)).code).toBe("authorization_pending");
  });

  it("limits token polling per IP", async () => {
    const ip = freshIp();
    const { passed, refused } = await hammer(() =>
      call("/auth/device/token", formInit({ grant_type: DEVICE_GRANT, device_code: "unknown" }, { "cf-connecting-ip": ip })),
    );
    expect(passed).toBeGreaterThanOrEqual(LIMIT);
    await expectRefusal(refused);
  });

  it.each([
    ["/auth/enroll", () => ({ method: "POST", headers: { authorization: "Bearer a.b.c" } })],
    ["/auth/logout", () => formInit({ refresh_token: "opr_unknown" })],
    ["/auth/scoped/redeem", () => jsonInit({ code: "unknown" }, { origin: "https://outpost.example.com" })],
  ])("limits %s per IP", async (path, init) => {
    const ip = freshIp();
    const { passed, refused } = await hammer(() => {
      const base = init() as RequestInit;
      return call(path, { ...base, headers: { ...(base.headers as Record<string, string>), "cf-connecting-ip": ip } });
    });
    expect(passed).toBeGreaterThanOrEqual(LIMIT);
    await expectRefusal(refused);
  });

  it("counts each IP on its own", async () => {
    const a = freshIp();
    const b = freshIp();
    await hammer(() => call("/auth/device/code", jsonInit({}, { "cf-connecting-ip": a })));
    for (let i = 0; i < 5; i++) {
      expect((await call("/auth/device/code", jsonInit({}, { "cf-connecting-ip": b }))).status).toBe(200);
    }
  });
});
