// Key rotation and published metadata: previous keys honoured only when listed; JWKS and OpenID configuration.
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet, type JWK } from "jose";
import { describe, expect, it } from "vitest";
import { bearer, call, decodeProtectedHeader, deviceLogin, expectError, expectInvalid, jsonInit, mint, previousJwk, publicOf, signingJwk } from "./helpers.ts";

const previousListed = () => ({ OUTPOST_PREVIOUS_KEYS: JSON.stringify([publicOf(previousJwk())]) });

describe("tokens signed with a rotated key", () => {
  it("are refused while OUTPOST_PREVIOUS_KEYS does not list the key", async () => {
    const token = await mint({}, { key: previousJwk() });
    expect(previousJwk().kid).toBe("test-previous");
    const log = await expectInvalid(await call("/auth/me", bearer(token)), token);
    expect(log.detail).toMatch(/NO_MATCHING_KEY/);
  });

  it("are accepted once the public key is listed, as an array or as a JWKS", async () => {
    const token = await mint({}, { key: previousJwk() });
    const asArray = await call("/auth/me", bearer(token), previousListed());
    expect(asArray.status).toBe(200);
    expect(await asArray.json()).toMatchObject({ email: "owner@example.com", role: "owner" });
    const asJwks = await call("/auth/me", bearer(token), { OUTPOST_PREVIOUS_KEYS: JSON.stringify({ keys: [publicOf(previousJwk())] }) });
    expect(asJwks.status).toBe(200);
  });

  it("are refused when they claim the current key's kid", async () => {
    const token = await mint({}, { key: previousJwk(), kid: "test-current" });
    await expectInvalid(await call("/auth/me", bearer(token), previousListed()), token);
  });

  it("listing an unrelated key does not help", async () => {
    const other = { ...publicOf(signingJwk()), kid: "test-previous" };
    const token = await mint({}, { key: previousJwk() });
    await expectInvalid(await call("/auth/me", bearer(token), { OUTPOST_PREVIOUS_KEYS: JSON.stringify([other]) }), token);
  });

  it.each([
    ["a private key", () => JSON.stringify([previousJwk()])],
    ["not JSON", () => "test-previous"],
    ["a key without kid", () => JSON.stringify([{ ...publicOf(previousJwk()), kid: undefined }])],
    ["an RSA-looking key", () => JSON.stringify([{ kty: "RSA", n: "AQAB", e: "AQAB", kid: "r" }])],
  ])("refuse to start with %s in OUTPOST_PREVIOUS_KEYS (503, value not echoed)", async (_label, value) => {
    const token = await mint({});
    const res = await call("/auth/me", bearer(token), { OUTPOST_PREVIOUS_KEYS: value() });
    const text = await expectError(res, 503, "CONFIG_INVALID");
    expect(text).not.toContain(previousJwk().d!);
  });
});

describe("/.well-known/jwks.json", () => {
  it("publishes only the current public key by default", async () => {
    const res = await call("/.well-known/jwks.json");
    expect(res.status).toBe(200);
    const text = await res.text();
    const jwks = JSON.parse(text) as JSONWebKeySet;
    expect(jwks.keys.map((k) => k.kid)).toEqual(["test-current"]);
    expect(text).not.toContain('"d"');
    expect(text).not.toContain(signingJwk().d!);
    const { x, y, crv, kty } = signingJwk();
    expect(jwks.keys[0]).toMatchObject({ x, y, crv, kty, alg: "ES256", use: "sig" });
  });

  it("lists the current and the previous public keys, never a private part", async () => {
    const res = await call("/.well-known/jwks.json", {}, previousListed());
    const text = await res.text();
    const jwks = JSON.parse(text) as JSONWebKeySet;
    expect(jwks.keys.map((k) => k.kid)).toEqual(["test-current", "test-previous"]);
    for (const key of jwks.keys as JWK[]) {
      expect(Object.keys(key).sort()).toEqual(["alg", "crv", "kid", "kty", "use", "x", "y"]);
    }
    expect(text).not.toContain(previousJwk().d!);
    expect(text).not.toContain(signingJwk().d!);
  });

  it("verifies the access tokens the Worker issues", async () => {
    const { access_token } = await deviceLogin("member");
    const jwks = await (await call("/.well-known/jwks.json")).json<JSONWebKeySet>();
    const { payload, protectedHeader } = await jwtVerify(access_token, createLocalJWKSet(jwks), {
      issuer: "https://outpost.example.com",
      audience: "outpost",
      typ: "at+jwt",
      algorithms: ["ES256"],
    });
    expect(protectedHeader.kid).toBe("test-current");
    expect(payload).toMatchObject({ sub: "outpost:member@example.com", email: "member@example.com" });
    expect(payload.exp! - payload.iat!).toBe(900);
    expect(payload.sid).toMatch(/^dev_/);
  });

  it("after a rotation the Worker signs with the new key and still honours the old one", async () => {
    const rotated = { OUTPOST_SIGNING_KEY: JSON.stringify(previousJwk()), OUTPOST_PREVIOUS_KEYS: JSON.stringify([publicOf(signingJwk())]) };
    const old = await mint({});
    expect((await call("/auth/me", bearer(old), rotated)).status).toBe(200);
    const res = await call("/auth/ws-ticket", jsonInit({ path: "/api/x" }, { authorization: `Bearer ${old}` }), rotated);
    const { ticket } = await res.json<{ ticket: string }>();
    expect(decodeProtectedHeader(ticket).kid).toBe("test-previous");
  });
});

describe("/.well-known/openid-configuration and /.well-known/oauth-authorization-server (RFC 8414)", () => {
  it.each(["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"])(
    "%s describes the issuer, its keys, the device, token and revocation endpoints, grant types and public clients",
    async (path) => {
      const res = await call(path);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^application\/json/);
      const doc = await res.json<Record<string, unknown>>();
      expect(doc).toEqual({
        issuer: "https://outpost.example.com",
        jwks_uri: "https://outpost.example.com/.well-known/jwks.json",
        device_authorization_endpoint: "https://outpost.example.com/auth/device/code",
        token_endpoint: "https://outpost.example.com/auth/token",
        revocation_endpoint: "https://outpost.example.com/auth/revoke",
        grant_types_supported: ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
        // REQUIRED by RFC 8414 §2; there is no authorization endpoint, so no response type.
        response_types_supported: [],
        // The default of both is client_secret_basic: Outpost's clients are public.
        token_endpoint_auth_methods_supported: ["none"],
        revocation_endpoint_auth_methods_supported: ["none"],
        auth_provider: "outpost",
      });
    },
  );

  it("names endpoints that answer POST", async () => {
    const doc = await (await call("/.well-known/oauth-authorization-server")).json<Record<string, string>>();
    for (const key of ["device_authorization_endpoint", "token_endpoint", "revocation_endpoint"]) {
      const res = await call(doc[key]!, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "" });
      // Each is reached (no 404) and answers an empty request in OAuth's shape.
      expect(res.status, key).toBe(400);
      expect((await res.json<{ error: string }>()).error, key).toBe("invalid_request");
    }
  });

  it("uses PUBLIC_URL's origin as the issuer, dropping any path", async () => {
    const res = await call("/.well-known/openid-configuration", {}, { PUBLIC_URL: "https://gw.example.net:8443/base/" });
    const doc = await res.json<{ issuer: string; jwks_uri: string; token_endpoint: string }>();
    expect(doc.issuer).toBe("https://gw.example.net:8443");
    expect(doc.jwks_uri).toBe("https://gw.example.net:8443/.well-known/jwks.json");
    expect(doc.token_endpoint).toBe("https://gw.example.net:8443/auth/token");
  });

  it("answers 503 without echoing anything when PUBLIC_URL is missing", async () => {
    await expectError(await call("/.well-known/openid-configuration", {}, { PUBLIC_URL: "" }), 503, "CONFIG_INVALID");
    await expectError(await call("/.well-known/jwks.json", {}, { OUTPOST_SIGNING_KEY: "" }), 503, "CONFIG_INVALID");
  });
});
