// Bearer access tokens: the valid case, then forged algorithms, keys, headers, tampering, malformed strings and wrong schemes.
import { SignJWT } from "jose";
import { describe, expect, inject, it } from "vitest";
import { b64url, bearer, call, errorOf, expectInvalid, INVALID_MESSAGE, logOf, mint, publicOf, rawJwt, signingJwk, tokenFor, validPayload } from "./helpers.ts";

const me = (token: string) => call("/auth/me", bearer(token));

describe("a valid Outpost access token", () => {
  it.each(["owner", "member", "viewer"] as const)("authenticates the %s with the role from the access list", async (role) => {
    const res = await me(await tokenFor(role));
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(await res.json()).toMatchObject({ email: `${role}@example.com`, role, provider: "outpost", deviceId: null });
  });

  it("matches the access list case-insensitively and ignores any role claim in the token", async () => {
    const res = await me(await mint({ sub: "outpost:viewer@example.com", email: "Viewer@EXAMPLE.com", role: "owner" }));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ email: "viewer@example.com", role: "viewer" });
  });
});

describe("forged algorithms and keys", () => {
  it('refuses alg "none" with an empty signature', async () => {
    const token = rawJwt({ alg: "none", typ: "at+jwt" }, validPayload());
    await expectInvalid(await me(token), token);
  });

  it('refuses alg "none" with some signature bytes', async () => {
    const token = rawJwt({ alg: "none", typ: "at+jwt", kid: "test-current" }, validPayload(), "AAAA");
    const log = await expectInvalid(await me(token), token);
    expect(log.detail).toMatch(/ALG_NOT_ALLOWED/);
  });

  it("refuses HS256 tokens keyed with the public key (algorithm confusion)", async () => {
    const pub = publicOf(signingJwk());
    for (const secret of [JSON.stringify(pub), pub.x!, JSON.stringify({ keys: [pub] })]) {
      const token = await new SignJWT(validPayload())
        .setProtectedHeader({ alg: "HS256", typ: "at+jwt", kid: "test-current" })
        .sign(new TextEncoder().encode(secret));
      const log = await expectInvalid(await me(token), token);
      expect(log.detail).toMatch(/ALG_NOT_ALLOWED/);
    }
  });

  it("refuses a token signed by a key Outpost does not know, even with the right kid", async () => {
    const attacker = inject("strangerEs256");
    const token = await mint({}, { key: attacker, kid: "test-current" });
    const log = await expectInvalid(await me(token), token);
    expect(log.detail).toMatch(/SIGNATURE_VERIFICATION_FAILED/);
  });

  it.each([
    ["unknown", "nope"],
    ["path-like", "../../x"],
    ["SQL-like", "' OR 1=1 --"],
    ["empty", ""],
    ["numeric", 1],
  ])("refuses an %s kid", async (_label, kid) => {
    const token = await mint({}, { header: { kid } });
    const log = await expectInvalid(await me(token), token);
    expect(log.detail).toMatch(/NO_MATCHING_KEY|JWKS|kid/i);
  });

  it.each([
    ["jku", (jwks: string) => ({ jku: jwks })],
    ["x5u", (jwks: string) => ({ x5u: jwks })],
    ["embedded jwk", () => ({ jwk: publicOf(inject("strangerEs256")) })],
  ])("never fetches or trusts a key from the %s header", async (_label, header) => {
    const attacker = inject("strangerEs256");
    // The loopback JWKS server stands in for an attacker's key URL.
    const jwksUrl = `${inject("supabaseUrl")}/auth/v1/.well-known/jwks.json`;
    const before = await fetchCount();
    for (const kid of ["test-current", attacker.kid]) {
      const token = await mint({}, { key: attacker, kid, header: header(jwksUrl) });
      await expectInvalid(await me(token), token);
    }
    expect(await fetchCount()).toBe(before);
  });
});

async function fetchCount(): Promise<number> {
  const res = await fetch(`${inject("supabaseUrl")}/__fetches`);
  return (await res.json<{ count: number }>()).count;
}

describe("tampering", () => {
  it("refuses a payload changed after signing", async () => {
    const token = await tokenFor("viewer");
    const [h, , s] = token.split(".");
    const forged = `${h}.${b64url(JSON.stringify(validPayload({ sub: "outpost:viewer@example.com", email: "owner@example.com" })))}.${s}`;
    const log = await expectInvalid(await me(forged), forged);
    expect(log.detail).toMatch(/SIGNATURE_VERIFICATION_FAILED/);
  });

  it("refuses a header changed after signing", async () => {
    const token = await tokenFor("owner");
    const [, p, s] = token.split(".");
    const forged = `${b64url(JSON.stringify({ alg: "ES256", typ: "at+jwt", kid: "test-current", x: 1 }))}.${p}.${s}`;
    await expectInvalid(await me(forged), forged);
  });

  it("refuses a changed or truncated signature", async () => {
    const token = await tokenFor("owner");
    const [h, p, s] = token.split(".") as [string, string, string];
    const mid = Math.floor(s.length / 2);
    const flipped = `${h}.${p}.${s.slice(0, mid)}${s[mid] === "A" ? "B" : "A"}${s.slice(mid + 1)}`;
    for (const bad of [flipped, `${h}.${p}.${s.slice(0, -4)}`, `${h}.${p}.${b64url(new Uint8Array(64))}`]) {
      await expectInvalid(await me(bad), bad);
    }
  });
});

describe("malformed tokens and headers", () => {
  it.each(["abc", "a.b", "a.b.c.d", "..", "a.b.c", "e30.e30.e30", "eyJhbGciOiJFUzI1NiJ9.bm90IGpzb24.AAAA", "a.b.c!"])("refuses %j", async (token) => {
    await expectInvalid(await me(token), token);
  });

  it("refuses a validly signed token longer than 8192 characters before verifying it", async () => {
    const small = await mint({ pad: "x".repeat(5700) });
    expect(small.length).toBeLessThan(8192);
    expect((await me(small)).status).toBe(200);
    const big = await mint({ pad: "x".repeat(6200) });
    expect(big.length).toBeGreaterThan(8192);
    const log = await expectInvalid(await me(big), big);
    expect(log.detail).toBe("token too large");
  });

  it.each([
    ["lowercase scheme", (t: string) => `bearer ${t}`],
    ["upper-case scheme", (t: string) => `BEARER ${t}`],
    ["two spaces", (t: string) => `Bearer  ${t}`],
    ["a comma", (t: string) => `Bearer ${t},`],
    ["a tab", (t: string) => `Bearer\t${t}`],
    ["Token scheme", (t: string) => `Token ${t}`],
    ["Basic scheme", (t: string) => `Basic ${btoa(`owner@example.com:${t}`)}`],
    ["no scheme", (t: string) => t],
    ["empty value", () => ""],
    ["scheme only", () => "Bearer"],
  ])("refuses a valid token sent with %s", async (_label, header) => {
    const token = await tokenFor("owner");
    const res = await call("/auth/me", { headers: { authorization: header(token) } });
    await expectInvalid(res, token);
  });

  it("refuses duplicate Authorization headers, even when both carry the valid token", async () => {
    const token = await tokenFor("owner");
    const headers = new Headers();
    headers.append("authorization", `Bearer ${token}`);
    headers.append("authorization", `Bearer ${token}`);
    expect(headers.get("authorization")).toContain(", ");
    await expectInvalid(await call("/auth/me", { headers }), token);
  });

  it.each(["access_token", "token", "ticket", "id_token"])("ignores a token in ?%s= (AUTH_REQUIRED)", async (param) => {
    const token = await tokenFor("owner");
    const res = await call(`/auth/me?${param}=${token}`);
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe('Bearer realm="outpost"');
    const text = await res.text();
    expect(text).not.toContain(token);
    expect(JSON.parse(text).error.code).toBe("AUTH_REQUIRED");
  });
});

describe("refusals all look the same", () => {
  it("gives one message whatever check failed, while the log tells the reasons apart", async () => {
    const stranger = inject("strangerEs256");
    const tokens = [
      rawJwt({ alg: "none" }, validPayload(), "AAAA"),
      await mint({}, { key: stranger }),
      await mint({}, { kid: "nope" }),
      await mint({}, { ttl: -60 }),
      await mint({ iss: "https://evil.example.com" }),
      await mint({ aud: "outpost-ws" }),
      await mint({}, { typ: "outpost-ws-ticket+jwt" }),
      await mint({}, { ttl: 3600 }),
      "abc",
    ];
    const messages = new Set<string>();
    const details = new Set<string>();
    for (const token of tokens) {
      const res = await me(token);
      expect(res.status).toBe(401);
      const err = await errorOf(res);
      expect(err.code).toBe("AUTH_INVALID");
      messages.add(err.message);
      details.add(logOf(res).detail ?? "");
    }
    expect([...messages]).toEqual([INVALID_MESSAGE]);
    expect(details.size).toBeGreaterThanOrEqual(7);
  });
});
