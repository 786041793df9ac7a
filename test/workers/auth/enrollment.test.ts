// Browser enrollment: a single-use owner-minted link becomes a browser device; its refresh cookie rotates via /auth/refresh.
import { describe, expect, it } from "vitest";
import { mintEnrollmentLink } from "../../../shared/enrollment.ts";
import {
  ALLOWED_ORIGIN,
  BASE,
  signingJwk,
  bearer,
  call,
  cookieValue,
  decodeJwt,
  deviceLogin,
  expectError,
  expectInvalid,
  mint,
  previousJwk,
  sql,
  tokenFor,
} from "./helpers.ts";

async function linkToken(email: string, options: { ttlSeconds?: number; key?: ReturnType<typeof signingJwk>; publicUrl?: string } = {}): Promise<string> {
  const { url } = await mintEnrollmentLink({
    signingKey: options.key ?? signingJwk(),
    publicUrl: options.publicUrl ?? BASE,
    email,
    ttlSeconds: options.ttlSeconds,
  });
  expect(url.startsWith(`${options.publicUrl ?? BASE}/enroll#token=`)).toBe(true);
  return new URL(url).hash.slice("#token=".length);
}

const enroll = (token: string, headers: Record<string, string> = {}) =>
  call("/auth/enroll", { method: "POST", headers: { authorization: `Bearer ${token}`, ...headers } });
const refreshCookie = (cookie: string | null, headers: Record<string, string> = ALLOWED_ORIGIN) =>
  call("/auth/refresh", { method: "POST", headers: { ...(cookie ? { cookie: `__Host-outpost_refresh=${cookie}` } : {}), ...headers } });

describe("POST /auth/enroll", () => {
  it("turns a valid link into a browser session: access token plus an HttpOnly __Host- refresh cookie", async () => {
    const res = await enroll(await linkToken("Member@Example.com"), { "user-agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X)" });
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const body = await res.json<{ access_token: string; token_type: string; expires_in: number; device_id: string; email: string; role: string }>();
    expect(body).toMatchObject({ token_type: "Bearer", email: "member@example.com", role: "member" });
    expect(body).not.toHaveProperty("refresh_token");
    expect(body.expires_in).toBeGreaterThan(890);
    const setCookie = res.headers.get("set-cookie")!;
    // __Host-: Secure, Path=/ and no Domain, so no other host of the zone can plant or shadow it.
    expect(setCookie).toMatch(/^__Host-outpost_refresh=opr_[\w-]+;/);
    expect(setCookie).toMatch(/; Path=\/(;|$)/);
    expect(setCookie).not.toMatch(/; Domain=/i);
    expect(setCookie).toMatch(/; HttpOnly/);
    expect(setCookie).toMatch(/; Secure/);
    expect(setCookie).toMatch(/; SameSite=Strict/);
    const me = await call("/auth/me", bearer(body.access_token));
    expect(await me.json()).toMatchObject({ email: "member@example.com", role: "member", deviceId: body.device_id });
    const [device] = await sql<{ kind: string; platform: string; sub: string }>("SELECT kind, platform, sub FROM devices WHERE id = ?", body.device_id);
    expect(device).toEqual({ kind: "browser", platform: "ios", sub: "outpost:member@example.com" });
  });

  it("works once: the second use of the same link is refused", async () => {
    const token = await linkToken("owner@example.com");
    expect((await enroll(token)).status).toBe(200);
    await expectInvalid(await enroll(token), token);
  });

  it("refuses a link for an email on no list with 403, and does not burn it", async () => {
    const token = await linkToken("nobody@example.com");
    await expectError(await enroll(token), 403, "FORBIDDEN");
    // Once the email is listed, the same link still works.
    expect((await call("/auth/enroll", { method: "POST", ...bearer(token) }, { MEMBER_EMAILS: "member@example.com,nobody@example.com" })).status).toBe(200);
  });

  it("refuses an access token, a ticket-shaped token and no token", async () => {
    const access = await tokenFor("owner");
    await expectInvalid(await enroll(access), access);
    const device = await deviceLogin("owner");
    await expectInvalid(await enroll(device.access_token), device.access_token);
    await expectInvalid(await call("/auth/enroll", { method: "POST" }));
    await expectInvalid(await call("/auth/enroll", { method: "POST", headers: { authorization: "Basic abc" } }));
  });

  it("refuses a link signed by another key, for another issuer, or tampered with", async () => {
    const other = await linkToken("owner@example.com", { key: previousJwk() });
    await expectInvalid(await enroll(other), other);
    const foreign = await linkToken("owner@example.com", { publicUrl: "https://evil.example.com" });
    await expectInvalid(await enroll(foreign), foreign);
    const token = await linkToken("viewer@example.com");
    const [h, , s] = token.split(".");
    const payload = { ...decodeJwt(token), email: "owner@example.com" };
    const tampered = `${h}.${btoa(JSON.stringify(payload)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_")}.${s}`;
    await expectInvalid(await enroll(tampered), tampered);
  });

  it("refuses an expired link and one minted to live longer than 24 hours", async () => {
    const now = Math.floor(Date.now() / 1000);
    const expired = await mint({ aud: "outpost-enroll", iat: now - 7200, exp: now - 3600 }, { typ: "outpost-enroll+jwt" });
    await expectInvalid(await enroll(expired), expired);
    const tooLong = await mint({ aud: "outpost-enroll" }, { typ: "outpost-enroll+jwt", ttl: 24 * 3600 + 1 });
    expect((await expectInvalid(await enroll(tooLong), tooLong)).detail).toBe("lifetime too long");
    const fine = await mint({ aud: "outpost-enroll" }, { typ: "outpost-enroll+jwt", ttl: 24 * 3600 });
    expect((await enroll(fine)).status).toBe(200);
  });
});

describe("POST /auth/refresh (browser)", () => {
  async function session() {
    const res = await enroll(await linkToken("owner@example.com"));
    return {
      body: await res.json<{ access_token: string; device_id: string }>(),
      cookie: cookieValue(res.headers.get("set-cookie"), "__Host-outpost_refresh")!,
    };
  }

  it("trades the cookie for a new access token and a rotated cookie", async () => {
    const { body, cookie } = await session();
    const res = await refreshCookie(cookie);
    expect(res.status).toBe(200);
    const next = await res.json<{ access_token: string; device_id: string; role: string }>();
    expect(next.device_id).toBe(body.device_id);
    expect(next.role).toBe("owner");
    expect(next).not.toHaveProperty("refresh_token");
    const rotated = cookieValue(res.headers.get("set-cookie"), "__Host-outpost_refresh")!;
    expect(rotated).toMatch(/^opr_/);
    expect(rotated).not.toBe(cookie);
    expect(res.headers.get("set-cookie")).toMatch(/^__Host-outpost_refresh=opr_[\w-]+;.*; Path=\/(;|$)/);
    expect((await refreshCookie(rotated)).status).toBe(200);
  });

  it("needs an Origin of ours; a refused attempt does not spend the cookie", async () => {
    const { cookie } = await session();
    await expectError(await refreshCookie(cookie, {}), 403, "FORBIDDEN_ORIGIN");
    await expectError(await refreshCookie(cookie, { origin: "https://evil.example.com" }), 403, "FORBIDDEN_ORIGIN");
    expect((await refreshCookie(cookie)).status).toBe(200);
  });

  it("answers 401 without a cookie, and clears a bad cookie", async () => {
    await expectError(await refreshCookie(null), 401, "AUTH_REQUIRED");
    const res = await refreshCookie("opr_unknown");
    await expectInvalid(res);
    expect(res.headers.get("set-cookie")).toMatch(/^__Host-outpost_refresh=;.*Max-Age=0.*; Path=\/(;|$)/);
  });

  it("revokes the browser device when an old cookie is replayed after its successor was used", async () => {
    const { body, cookie } = await session();
    const rotated = cookieValue((await refreshCookie(cookie)).headers.get("set-cookie"), "__Host-outpost_refresh")!;
    const next = cookieValue((await refreshCookie(rotated)).headers.get("set-cookie"), "__Host-outpost_refresh")!;
    await expectInvalid(await refreshCookie(cookie));
    await expectInvalid(await refreshCookie(next));
    await expectInvalid(await call("/auth/me", bearer(body.access_token)), body.access_token);
  });

  it("gives a tab that lost the answer the same rotated cookie once (two tabs refreshing at once)", async () => {
    const { cookie } = await session();
    const first = await refreshCookie(cookie);
    const again = await refreshCookie(cookie);
    expect(again.status).toBe(200);
    const rotated = cookieValue(first.headers.get("set-cookie"), "__Host-outpost_refresh");
    expect(cookieValue(again.headers.get("set-cookie"), "__Host-outpost_refresh")).toBe(rotated);
    // A third presentation is a replay: the device is revoked.
    await expectInvalid(await refreshCookie(cookie));
    await expectInvalid(await refreshCookie(rotated!));
  });
});
