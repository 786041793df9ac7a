// The Supabase provider: user JWTs from the project's JWKS (ES256, RS256) or legacy HS256 secret, refetch limits, the verified-token cache.
import { importJWK, SignJWT, type JWK, type JWTPayload } from "jose";
import { afterEach, describe, expect, inject, it, vi } from "vitest";
import { JWKS_COOLDOWN_MS } from "../../../worker/auth/keys.ts";
import { bearer, callEnv, expectError, expectInvalid, makeEnv, mint, publicOf, tokenFor, type TestEnv } from "./helpers.ts";

const SECRET = "a-legacy-supabase-jwt-secret-of-40-chars!";
const sbUrl = () => inject("supabaseUrl");
const sbEnv = (extra: Partial<TestEnv> = {}) => makeEnv({ AUTH_PROVIDER: "supabase", SUPABASE_URL: sbUrl(), ...extra });

async function sbToken(claims: JWTPayload = {}, key: JWK = inject("supabaseEs256"), header: Record<string, unknown> = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const alg = (header.alg as string | undefined) ?? (key.kty === "RSA" ? "RS256" : "ES256");
  const payload: JWTPayload = {
    iss: `${sbUrl()}/auth/v1`,
    aud: "authenticated",
    role: "authenticated",
    sub: crypto.randomUUID(),
    email: "member@example.com",
    session_id: crypto.randomUUID(),
    iat: now,
    exp: now + 3600,
    ...claims,
  };
  return new SignJWT(payload).setProtectedHeader({ alg, kid: key.kid, typ: "JWT", ...header }).sign(await importJWK(key, alg));
}

function hs256(claims: JWTPayload = {}, secret = SECRET): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    iss: `${sbUrl()}/auth/v1`,
    aud: "authenticated",
    role: "authenticated",
    sub: crypto.randomUUID(),
    email: "member@example.com",
    iat: now,
    exp: now + 3600,
    ...claims,
  })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .sign(new TextEncoder().encode(secret));
}

async function fetches(): Promise<number> {
  return (await (await fetch(`${sbUrl()}/__fetches`)).json<{ count: number }>()).count;
}

const me = (token: string, env: TestEnv = sbEnv()) => callEnv(env, "/auth/me", bearer(token));

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe("Supabase user tokens", () => {
  it.each([
    ["ES256", () => inject("supabaseEs256")],
    ["RS256", () => inject("supabaseRs256")],
  ])("accepts an %s token from the JWKS", async (_alg, key) => {
    const sub = crypto.randomUUID();
    const res = await me(await sbToken({ sub, email: "Owner@Example.com" }, key()));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(expect.objectContaining({ sub, email: "owner@example.com", role: "owner", provider: "supabase", deviceId: null }));
  });

  it("still accepts Outpost's own access tokens", async () => {
    const res = await me(await tokenFor("viewer"));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ role: "viewer", provider: "outpost" });
  });

  it("answers 403 FORBIDDEN for a valid token whose email is on no list, or missing", async () => {
    await expectError(await me(await sbToken({ email: "stranger@example.com" })), 403, "FORBIDDEN");
    await expectError(await me(await sbToken({ email: undefined, phone: "+15550100" })), 403, "FORBIDDEN");
  });

  it("is refused when the provider is not configured", async () => {
    const token = await sbToken();
    await expectInvalid(await me(token, makeEnv()), token);
  });

  it("is refused under AUTH_PROVIDER=outpost even with SUPABASE_URL still set", async () => {
    const env = makeEnv({ AUTH_PROVIDER: "outpost", SUPABASE_URL: sbUrl(), SUPABASE_JWT_SECRET: SECRET });
    for (const token of [await sbToken(), await hs256()]) await expectInvalid(await me(token, env), token);
    const doc = await (await callEnv(env, "/.well-known/openid-configuration")).json<Record<string, unknown>>();
    expect(doc).toMatchObject({ auth_provider: "outpost" });
    expect(doc).not.toHaveProperty("supabase_url");
    const sbDoc = await (await callEnv(sbEnv(), "/.well-known/openid-configuration")).json<Record<string, unknown>>();
    expect(sbDoc).toMatchObject({ auth_provider: "supabase", supabase_url: sbUrl() });
  });

  it("ignores a sid claim: device revocation is for Outpost's own tokens", async () => {
    const res = await me(await sbToken({ sid: "dev_notADeviceOfOurs" }));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ deviceId: null });
  });
});

describe("Supabase tokens that are not user tokens", () => {
  it.each([
    ["an anon key (role anon, no sub, no email)", { role: "anon", sub: undefined, email: undefined, session_id: undefined }],
    ["an anon key with the legacy issuer", { iss: "supabase", role: "anon", sub: undefined, email: undefined }],
    ["a service_role key", { role: "service_role", sub: undefined, email: undefined }],
    ["a service_role token carrying an owner's email", { role: "service_role", email: "owner@example.com" }],
    ["no role", { role: undefined }],
    ["aud anon", { aud: "anon" }],
    ["aud of another audience", { aud: "outpost" }],
    ["another project's issuer", { iss: "https://other.supabase.co/auth/v1" }],
    ["the project URL as issuer (no /auth/v1)", { iss: "SB_URL" }],
    ["an expired token", { exp: Math.floor(Date.now() / 1000) - 60 }],
    ["an iat older than MAX_TOKEN_AGE_SECONDS", { iat: Math.floor(Date.now() / 1000) - 2 * 86_400 }],
  ])("refuses %s", async (_label, claims) => {
    const fixed = { ...claims } as Record<string, unknown>;
    if (fixed.iss === "SB_URL") fixed.iss = sbUrl();
    const token = await sbToken(fixed as JWTPayload);
    await expectInvalid(await me(token), token);
  });

  it("refuses a token signed by an unpublished key that reuses a published kid", async () => {
    const stranger = inject("strangerEs256");
    expect(stranger.kid).toBe(inject("supabaseEs256").kid);
    const token = await sbToken({ email: "owner@example.com" }, stranger);
    const log = await expectInvalid(await me(token), token);
    expect(log.detail).toMatch(/SIGNATURE_VERIFICATION_FAILED/);
  });

  it("refuses a token without typ JWT", async () => {
    const token = await sbToken({}, inject("supabaseEs256"), { typ: "at+jwt" });
    await expectInvalid(await me(token), token);
  });

  it("refuses a Supabase-issued token signed with Outpost's own key", async () => {
    const token = await mint({ iss: `${sbUrl()}/auth/v1`, aud: "authenticated", role: "authenticated" }, { typ: "JWT" });
    await expectInvalid(await me(token), token);
  });
});

describe("legacy HS256 secret", () => {
  it("accepts HS256 only when SUPABASE_JWT_SECRET is set", async () => {
    const token = await hs256({ email: "owner@example.com" });
    const withSecret = await me(token, sbEnv({ SUPABASE_JWT_SECRET: SECRET }));
    expect(withSecret.status).toBe(200);
    expect(await withSecret.json()).toMatchObject({ role: "owner", provider: "supabase" });
    const without = await me(token);
    expect((await expectInvalid(without, token)).detail).toMatch(/ALG_NOT_ALLOWED/);
  });

  it("refuses HS256 signed with another secret or with the public key", async () => {
    const env = sbEnv({ SUPABASE_JWT_SECRET: SECRET });
    for (const secret of [`${SECRET}x`, JSON.stringify(publicOf(inject("supabaseEs256")))]) {
      const token = await hs256({}, secret);
      await expectInvalid(await me(token, env), token);
    }
  });

  it("refuses a service_role HS256 token even with the secret", async () => {
    const token = await hs256({ role: "service_role" });
    await expectInvalid(await me(token, sbEnv({ SUPABASE_JWT_SECRET: SECRET })), token);
  });

  it("refuses to run with a secret shorter than 32 characters", async () => {
    await expectError(await me(await hs256(), sbEnv({ SUPABASE_JWT_SECRET: "short-secret" })), 503, "CONFIG_INVALID");
  });
});

describe("JWKS fetching", () => {
  it("refetches at most once for unknown kids within the cooldown", async () => {
    const env = sbEnv();
    expect((await me(await sbToken(), env)).status).toBe(200);
    const before = await fetches();
    for (const kid of ["sb-unknown-1", "sb-unknown-2", "sb-unknown-3"]) {
      const token = await sbToken({}, { ...inject("supabaseEs256"), kid });
      await expectInvalid(await me(token, env), token);
    }
    expect((await fetches()) - before).toBeLessThanOrEqual(1);
  });

  it("refetches for an unknown kid once the cooldown has passed", async () => {
    const env = sbEnv();
    expect((await me(await sbToken(), env)).status).toBe(200);
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + JWKS_COOLDOWN_MS + 1000);
    const before = await fetches();
    const token = await sbToken({}, { ...inject("supabaseEs256"), kid: "sb-unknown-4" });
    await expectInvalid(await me(token, env), token);
    expect((await fetches()) - before).toBe(1);
  });

  it("never fetches for a forged signature or a refused algorithm", async () => {
    const env = sbEnv();
    expect((await me(await sbToken(), env)).status).toBe(200);
    const before = await fetches();
    const forged = await sbToken({}, inject("strangerEs256"));
    await expectInvalid(await me(forged, env), forged);
    const hmac = await hs256();
    await expectInvalid(await me(hmac, env), hmac);
    expect(await fetches()).toBe(before);
  });
});

describe("verified-token cache", () => {
  it("serves a repeated token without fetching or verifying again", async () => {
    const env = sbEnv();
    const token = await sbToken({ email: "owner@example.com" });
    expect((await me(token, env)).status).toBe(200);
    const before = await fetches();
    const verify = vi.spyOn(crypto.subtle, "verify");
    expect((await me(token, env)).status).toBe(200);
    expect(verify).not.toHaveBeenCalled();
    // The spy does see verification: a different token is checked.
    expect((await me(await sbToken({ email: "owner@example.com" }), env)).status).toBe(200);
    expect(verify).toHaveBeenCalled();
    expect(await fetches()).toBe(before);
  });

  it("never serves a token from the cache after it expired", async () => {
    const env = sbEnv();
    const token = await sbToken({ exp: Math.floor(Date.now() / 1000) + 2 });
    expect((await me(token, env)).status).toBe(200);
    // Past exp plus the 5 s clock tolerance: neither the cache nor a fresh check may accept it.
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 8_000);
    const log = await expectInvalid(await me(token, env), token);
    expect(log.detail).toMatch(/JWT_EXPIRED/);
  });
});
