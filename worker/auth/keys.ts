// Imports signing and verification keys once per isolate: Outpost's own ES256 keys and the Supabase JWKS.
import { createLocalJWKSet, createRemoteJWKSet, type JSONWebKeySet, type JWK } from "jose";
import { importSigningKey } from "../../shared/assertion.ts";
import type { AuthConfig } from "../../shared/settings/index.ts";

export interface Signer {
  kid: string;
  key: CryptoKey;
}

const localSets = new Map<string, { jwks: JSONWebKeySet; keySet: ReturnType<typeof createLocalJWKSet> }>();
const remoteSets = new Map<string, ReturnType<typeof createRemoteJWKSet>>();
const secrets = new Map<string, Uint8Array>();

/** How long an unknown kid must wait before the Supabase JWKS is fetched again. */
export const JWKS_COOLDOWN_MS = 30_000;
/** How long a fetched JWKS is trusted before it is refreshed. */
const JWKS_MAX_AGE_MS = 10 * 60_000;

/** The current signing key, imported once per isolate (the same import the assertions use). */
export async function getSigner(auth: AuthConfig): Promise<Signer> {
  const key = await importSigningKey(auth.signingKey);
  return { kid: auth.signingKey.kid, key: key as CryptoKey };
}

function publicPart(jwk: JWK & { kid: string }): JWK {
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, kid: jwk.kid, alg: "ES256", use: "sig" };
}

/** The public keys of Outpost's issuer: the current signing key first, then rotated ones still honoured. */
export function ownKeys(auth: AuthConfig) {
  const cacheKey = [auth.signingKey, ...auth.previousKeys].map((k) => `${k.kid}:${k.x}`).join("|");
  let entry = localSets.get(cacheKey);
  if (!entry) {
    const jwks = { keys: [publicPart(auth.signingKey), ...auth.previousKeys.map(publicPart)] };
    entry = { jwks, keySet: createLocalJWKSet(jwks) };
    localSets.set(cacheKey, entry);
  }
  return entry;
}

export function supabaseKeySet(jwksUrl: string) {
  let set = remoteSets.get(jwksUrl);
  if (!set) {
    set = createRemoteJWKSet(new URL(jwksUrl), {
      cooldownDuration: JWKS_COOLDOWN_MS,
      cacheMaxAge: JWKS_MAX_AGE_MS,
      timeoutDuration: 5_000,
    });
    remoteSets.set(jwksUrl, set);
  }
  return set;
}

export function supabaseSecret(secret: string): Uint8Array {
  let key = secrets.get(secret);
  if (!key) {
    key = new TextEncoder().encode(secret);
    secrets.set(secret, key);
  }
  return key;
}
