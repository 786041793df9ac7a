// Access-token claims: time checks, issuer, audience, typ, lifetime, and one token kind never passing for another.
import { describe, expect, it } from "vitest";
import { getAuthConfig, type AuthConfig } from "../../../shared/settings/index.ts";
import { mintEnrollmentLink } from "../../../shared/enrollment.ts";
import { mintOwn, TOKEN_KINDS, verifyOwn, type TokenKind } from "../../../worker/auth/tokens.ts";
import { bearer, BASE, call, decodeJwt, decodeProtectedHeader, expectInvalid, jsonInit, makeEnv, mint, signingJwk, tokenFor } from "./helpers.ts";

const me = (token: string) => call("/auth/me", bearer(token));
const now = () => Math.floor(Date.now() / 1000);

function auth(): AuthConfig {
  const result = getAuthConfig(makeEnv());
  if (!result.ok) throw new Error("test config is invalid");
  return result.auth;
}

describe("time claims", () => {
  it("refuses an expired token", async () => {
    const token = await mint({ iat: now() - 700, exp: now() - 60 });
    expect((await expectInvalid(await me(token), token)).detail).toMatch(/JWT_EXPIRED.*exp/);
  });

  it("allows a few seconds of clock skew, no more", async () => {
    expect((await me(await mint({ iat: now() - 600, exp: now() - 2 }))).status).toBe(200);
    const token = await mint({ iat: now() - 600, exp: now() - 10 });
    await expectInvalid(await me(token), token);
  });

  it("refuses a token that is not valid yet (nbf in the future)", async () => {
    expect((await me(await mint({ nbf: now() - 10 }))).status).toBe(200);
    const token = await mint({ nbf: now() + 600 });
    expect((await expectInvalid(await me(token), token)).detail).toMatch(/nbf/);
  });

  it.each([60, 3600, 10 * 365 * 86_400])("refuses an iat %i s in the future", async (ahead) => {
    const token = await mint({}, { iatOffset: ahead, ttl: 600 });
    expect((await expectInvalid(await me(token), token)).detail).toMatch(/iat/);
  });

  it("refuses an iat older than the kind's lifetime even when exp is still ahead", async () => {
    const token = await mint({ iat: now() - 2000, exp: now() + 60 });
    await expectInvalid(await me(token), token);
  });

  it.each(["exp", "iat", "sub", "jti", "iss", "aud"] as const)("refuses a token without %s", async (claim) => {
    const token = await mint({}, { omit: [claim] });
    await expectInvalid(await me(token), token);
  });

  it.each([
    ["string exp", { exp: "9999999999" }],
    ["float NaN-ish iat", { iat: "now" }],
    ["boolean nbf", { nbf: true }],
  ])("refuses a %s", async (_label, claims) => {
    const token = await mint(claims as Record<string, unknown>);
    await expectInvalid(await me(token), token);
  });
});

describe("issuer, audience and typ", () => {
  it.each([
    "https://evil.example.com",
    "https://outpost.example.com/",
    "http://outpost.example.com",
    "https://outpost.example.com.evil.com",
    "https://OUTPOST.example.com",
  ])("refuses iss %s", async (iss) => {
    const token = await mint({ iss });
    await expectInvalid(await me(token), token);
  });

  it("follows PUBLIC_URL: tokens from the old issuer stop working when it changes", async () => {
    const token = await tokenFor("owner");
    const res = await call("/auth/me", bearer(token), { PUBLIC_URL: "https://gw.example.net" });
    await expectInvalid(res, token);
    const moved = await mint({ iss: "https://gw.example.net" });
    expect((await call("/auth/me", bearer(moved), { PUBLIC_URL: "https://gw.example.net/some/path" })).status).toBe(200);
  });

  it.each([["outpost-ws"], ["origin"], ["authenticated"], [["other"]], [""]])("refuses aud %j", async (aud) => {
    const token = await mint({ aud });
    expect((await expectInvalid(await me(token), token)).detail).toMatch(/aud/);
  });

  it.each([["JWT"], ["jwt"], ["outpost-ws-ticket+jwt"], ["outpost-scoped+jwt"], ["outpost-enroll+jwt"], ["outpost-assertion+jwt"], [null]])(
    "refuses typ %j on an otherwise valid access token",
    async (typ) => {
      const token = await mint({}, { typ });
      expect((await expectInvalid(await me(token), token)).detail).toMatch(/typ/);
    },
  );

  it("refuses an access token minted to live longer than 15 minutes", async () => {
    expect((await me(await mint({}, { ttl: TOKEN_KINDS.access.ttl }))).status).toBe(200);
    const token = await mint({}, { ttl: TOKEN_KINDS.access.ttl + 1 });
    expect((await expectInvalid(await me(token), token)).detail).toBe("lifetime too long");
  });
});

describe("token kinds never stand in for one another", () => {
  const claims = { sub: "outpost:owner@example.com", email: "owner@example.com", path: "/api/x", prefix: "/api/" };

  it.each(["scoped", "enrollment", "wsTicket", "assertion"] as const)("a real %s token is not a bearer access token", async (kind) => {
    const a = auth();
    const { token } = await mintOwn(a, kind, claims, kind === "assertion" ? { audience: a.originAudience } : {});
    expect(decodeProtectedHeader(token).typ).toBe(TOKEN_KINDS[kind].typ);
    await expectInvalid(await me(token), token);
  });

  it("a ticket from POST /auth/ws-ticket is not a bearer access token", async () => {
    const res = await call("/auth/ws-ticket", jsonInit({ path: "/api/ws/echo" }, { authorization: `Bearer ${await tokenFor("owner")}` }));
    expect(res.status).toBe(200);
    const { ticket } = await res.json<{ ticket: string }>();
    await expectInvalid(await me(ticket), ticket);
  });

  it("an enrollment link's token is not a bearer access token", async () => {
    const { url } = await mintEnrollmentLink({ signingKey: signingJwk(), publicUrl: BASE, email: "owner@example.com" });
    const token = new URL(url).hash.slice("#token=".length);
    expect(decodeJwt(token).email).toBe("owner@example.com");
    await expectInvalid(await me(token), token);
  });

  it("each kind verifies only as itself", async () => {
    const a = auth();
    const kinds = Object.keys(TOKEN_KINDS) as TokenKind[];
    const audienceOf = (k: TokenKind) => (k === "assertion" ? a.originAudience : undefined);
    for (const minted of kinds) {
      const { token } = await mintOwn(a, minted, claims, { audience: audienceOf(minted) });
      for (const expected of kinds) {
        const outcome = await verifyOwn(a, token, expected, audienceOf(expected)).then(
          () => "ok",
          (err: { code?: string }) => err.code,
        );
        expect(outcome, `${minted} verified as ${expected}`).toBe(minted === expected ? "ok" : "AUTH_INVALID");
      }
    }
  });

  it("the same claims with another kind's audience but the access typ are refused", async () => {
    for (const aud of ["outpost-scoped", "outpost-enroll", "outpost-ws", "origin"]) {
      const token = await mint({ aud });
      await expectInvalid(await me(token), token);
    }
  });
});
