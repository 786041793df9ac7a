// Identity settings for test stacks: one generated signing key per process, a fixed access list, token minting.
import { generateKeyPairSync } from "node:crypto";
import { importJWK, SignJWT, type JWK } from "jose";
import { outpostSubject } from "../../shared/enrollment.ts";

export const OWNER = "owner@example.com";
export const MEMBER = "member@example.com";
export const VIEWER = "viewer@example.com";

function generate(kid: string): JWK & { kid: string } {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  return { ...(privateKey.export({ format: "jwk" }) as JWK), kid, alg: "ES256" };
}

/** Generated once per test process: never committed, never shared with a developer's .dev.vars. */
export const TEST_SIGNING_KEY = generate("test-stack");

export const IDENTITY_VARS: Record<string, string> = {
  AUTH_PROVIDER: "outpost",
  OUTPOST_SIGNING_KEY: JSON.stringify(TEST_SIGNING_KEY),
  OWNER_EMAILS: OWNER,
  MEMBER_EMAILS: MEMBER,
  VIEWER_EMAILS: VIEWER,
  ORIGIN_AUDIENCE: "origin",
};

/** An Outpost access token (typ at+jwt, 15 min) for an email, as the edge issues after a device login. */
export async function mintAccessToken(publicUrl: string, email: string, options: { ttl?: number; sid?: string } = {}): Promise<string> {
  const key = await importJWK(TEST_SIGNING_KEY, "ES256");
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ email, ...(options.sid ? { sid: options.sid } : {}) })
    .setProtectedHeader({ alg: "ES256", typ: "at+jwt", kid: TEST_SIGNING_KEY.kid })
    .setIssuer(new URL(publicUrl).origin)
    .setAudience("outpost")
    .setSubject(outpostSubject(email))
    .setJti(crypto.randomUUID())
    .setIssuedAt(now)
    .setExpirationTime(now + Math.min(options.ttl ?? 900, 900))
    .sign(key);
}
