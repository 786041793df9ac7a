// Rate limits on the unauthenticated auth endpoints (AUTH_LIMITER, 30 a minute per key): per network (an IPv4 address
// or an IPv6 /64) for every one, and per token hash for those that take a token.
import { describe, expect, it } from "vitest";
import { ALLOWED_ORIGIN, call, CLIENT_ID, DEVICE_GRANT, deviceLogin, errorOf, expectOAuthError, formInit, freshIp, sql } from "./helpers.ts";

const LIMIT = 30;

/**
 * Calls until the first 429 and returns how many calls passed before it. Windows are aligned to the
 * wall clock, so a window may roll over mid-run: allow up to two windows' worth before giving up.
 */
async function hammer(send: (i: number) => Promise<Response>): Promise<{ passed: number; refused: Response }> {
  for (let i = 0; i <= 2 * LIMIT + 1; i++) {
    const res = await send(i);
    if (res.status === 429) return { passed: i, refused: res };
    await res.body?.cancel();
  }
  throw new Error(`no 429 after ${2 * LIMIT + 2} calls`);
}

/** Outpost's shape, on the routes that keep it. */
async function expectRefusal(res: Response): Promise<void> {
  expect(res.status).toBe(429);
  expect(res.headers.get("retry-after")).toBe("60");
  expect((await errorOf(res)).code).toBe("RATE_LIMITED");
}

/** OAuth's shape on the OAuth endpoints: slow_down, 429, Retry-After. */
async function expectOAuthRefusal(res: Response): Promise<void> {
  expect(res.headers.get("retry-after")).toBe("60");
  await expectOAuthError(res, 429, "slow_down");
}

const deviceCode = (ip: string) => call("/auth/device/code", formInit({ client_id: CLIENT_ID }, { "cf-connecting-ip": ip }));
const withIp = (init: RequestInit, ip: string): RequestInit => ({ ...init, headers: { ...(init.headers as Record<string, string>), "cf-connecting-ip": ip } });

describe("AUTH_LIMITER per network", () => {
  it("limits /auth/device/code per IP, stores nothing once limited, and leaves other IPs alone", async () => {
    const ip = freshIp();
    const { passed, refused } = await hammer(() => deviceCode(ip));
    expect(passed).toBeGreaterThanOrEqual(LIMIT);
    expect(passed).toBeLessThanOrEqual(2 * LIMIT);
    await expectOAuthRefusal(refused);
    const stored = await sql<{ n: number }>("SELECT count(*) AS n FROM device_codes WHERE ip = ?", ip);
    expect(stored[0]!.n).toBe(passed);
    await expectOAuthRefusal(await deviceCode(ip));
    expect((await deviceCode(freshIp())).status).toBe(200);
  });

  it("keeps a separate budget for the token endpoint, so a limited IP can still finish its login", async () => {
    const ip = freshIp();
    const { device_code } = await (await deviceCode(ip)).json<{ device_code: string }>();
    await hammer(() => deviceCode(ip));
    const pollRes = await call("/auth/device/token", formInit({ grant_type: DEVICE_GRANT, device_code, client_id: CLIENT_ID }, { "cf-connecting-ip": ip }));
    await expectOAuthError(pollRes, 400, "authorization_pending");
  });

  it("limits token polling per IP", async () => {
    const ip = freshIp();
    const { passed, refused } = await hammer(() =>
      call("/auth/device/token", formInit({ grant_type: DEVICE_GRANT, device_code: "unknown", client_id: CLIENT_ID }, { "cf-connecting-ip": ip })),
    );
    expect(passed).toBeGreaterThanOrEqual(LIMIT);
    await expectOAuthRefusal(refused);
  });

  it.each([
    ["/auth/enroll", () => ({ method: "POST", headers: { authorization: "Bearer a.b.c" } })],
    // Different tokens each time: what is limited here is the network.
    ["/auth/logout", (i: number) => formInit({ refresh_token: `opr_unknown${i}` })],
    ["/auth/refresh", (i: number) => ({ method: "POST", headers: { ...ALLOWED_ORIGIN, cookie: `__Host-outpost_refresh=opr_unknown${i}` } })],
    ["/auth/scoped/redeem", () => ({ method: "POST", headers: { "content-type": "application/json", ...ALLOWED_ORIGIN }, body: '{"code":"unknown"}' })],
  ])("limits %s per IP", async (path, init) => {
    const ip = freshIp();
    const { passed, refused } = await hammer((i) => call(path, withIp(init(i) as RequestInit, ip)));
    expect(passed).toBeGreaterThanOrEqual(LIMIT);
    await expectRefusal(refused);
  });

  it("limits /auth/revoke per IP, in OAuth's shape", async () => {
    const ip = freshIp();
    const { passed, refused } = await hammer((i) => call("/auth/revoke", formInit({ token: `opr_unknown${i}` }, { "cf-connecting-ip": ip })));
    expect(passed).toBeGreaterThanOrEqual(LIMIT);
    await expectOAuthRefusal(refused);
  });

  it("counts each IP on its own", async () => {
    const a = freshIp();
    const b = freshIp();
    await hammer(() => deviceCode(a));
    for (let i = 0; i < 5; i++) expect((await deviceCode(b)).status).toBe(200);
  });

  it("counts an IPv6 client per /64: other addresses of the same /64 are limited too, the next /64 is not", async () => {
    const [c, d] = [(Math.random() * 0xffff) | 0, (Math.random() * 0xfffe) & 0xfffe];
    const prefix = `2001:db8:${c.toString(16)}:${d.toString(16)}`;
    await hammer((i) => deviceCode(`${prefix}::${(i + 1).toString(16)}`));
    await expectOAuthRefusal(await deviceCode(`${prefix}:ffff:ffff:ffff:fffe`));
    // The same /64 written out in full (upper case, leading zeros) is the same network.
    await expectOAuthRefusal(await deviceCode(`2001:0DB8:${c.toString(16).toUpperCase().padStart(4, "0")}:${d.toString(16).padStart(4, "0")}:0:0:0:77`));
    expect((await deviceCode(`2001:db8:${c.toString(16)}:${(d + 1).toString(16)}::1`)).status).toBe(200);
  });

  it("counts IPv4-mapped IPv6 addresses as the IPv4 address", async () => {
    const v4 = `198.51.100.${(Math.random() * 250) | 0}`;
    await hammer(() => deviceCode(`::ffff:${v4}`));
    await expectOAuthRefusal(await deviceCode(v4));
  });
});

describe("AUTH_LIMITER per token", () => {
  it("limits /auth/logout per token hash, from any number of networks", async () => {
    const token = `opr_${crypto.randomUUID()}`;
    const { passed, refused } = await hammer(() => call("/auth/logout", formInit({ refresh_token: token }, { "cf-connecting-ip": freshIp() })));
    expect(passed).toBeGreaterThanOrEqual(LIMIT);
    await expectRefusal(refused);
    // Another token from a fresh network is not affected.
    expect((await call("/auth/logout", formInit({ refresh_token: `opr_${crypto.randomUUID()}` }, { "cf-connecting-ip": freshIp() }))).status).toBe(200);
  });

  it("limits /auth/refresh per token hash, from any number of networks", async () => {
    const cookie = `__Host-outpost_refresh=opr_${crypto.randomUUID()}`;
    const { passed, refused } = await hammer(() =>
      call("/auth/refresh", { method: "POST", headers: { ...ALLOWED_ORIGIN, cookie, "cf-connecting-ip": freshIp() } }),
    );
    expect(passed).toBeGreaterThanOrEqual(LIMIT);
    await expectRefusal(refused);
  });

  it("limits the refresh grant and revocation per token hash; a limited token is left as it was", async () => {
    const tokens = await deviceLogin("member");
    const garbage = `opr_${crypto.randomUUID()}`;
    const { refused } = await hammer(() =>
      call("/auth/token", formInit({ grant_type: "refresh_token", refresh_token: garbage }, { "cf-connecting-ip": freshIp() })),
    );
    await expectOAuthRefusal(refused);
    const revoked = await hammer(() => call("/auth/revoke", formInit({ token: garbage }, { "cf-connecting-ip": freshIp() })));
    await expectOAuthRefusal(revoked.refused);
    // The real token has its own budget and still rotates.
    const ok = await call("/auth/token", formInit({ grant_type: "refresh_token", refresh_token: tokens.refresh_token }, { "cf-connecting-ip": freshIp() }));
    expect(ok.status).toBe(200);
  });
});
