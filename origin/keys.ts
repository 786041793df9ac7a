// The edge's public keys for the origin: a fixed JWKS, or the edge's /.well-known/jwks.json fetched lazily and cached.
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  errors,
  jwksCache,
  type ExportedJWKSCache,
  type FetchImplementation,
  type JWKSCacheInput,
  type JWTVerifyGetKey,
} from "jose";

/** An unknown kid refetches the edge's JWKS at most this often. */
const JWKS_COOLDOWN_MS = 30_000;
/** A fetched JWKS is refreshed on first use after this long. */
const JWKS_MAX_AGE_MS = 10 * 60_000;
/** If a refresh fails, the keys fetched before stay usable this long after their fetch; then the origin fails closed. */
const JWKS_MAX_STALE_MS = 60 * 60_000;
const FETCH_TIMEOUT_MS = 5_000;
/** After a failed fetch with no keys at all, requests are refused at once (not each kept waiting) for this long. */
const FAILED_FETCH_PAUSE_MS = 1_000;
const MAX_JWKS_BYTES = 64 * 1024;

export interface PublicJwk {
  kty: "EC";
  crv: "P-256";
  x: string;
  y: string;
  kid?: string;
  alg: "ES256";
  use: "sig";
}

/** Finds the verification key for a token's header: jose's key resolver (createLocalJWKSet, createRemoteJWKSet). */
export type KeySource = JWTVerifyGetKey;

/**
 * Parses a JWKS given as JSON text: {"keys":[...]}, a single JWK, or an array of JWKs. Only P-256 EC keys are accepted
 * (private parts dropped); keys for another alg are skipped.
 */
export function parseJwks(text: string): { keys: PublicJwk[] } {
  const parsed = JSON.parse(text) as unknown;
  const list = Array.isArray(parsed) ? parsed : parsed && typeof parsed === "object" && "keys" in parsed ? (parsed as { keys: unknown }).keys : [parsed];
  if (!Array.isArray(list)) throw new TypeError("no keys");
  const keys: PublicJwk[] = [];
  for (const jwk of list as Record<string, unknown>[]) {
    if (!jwk || typeof jwk !== "object" || jwk.kty !== "EC" || jwk.crv !== "P-256" || typeof jwk.x !== "string" || typeof jwk.y !== "string") {
      throw new TypeError("every key must be a P-256 EC JWK");
    }
    if (jwk.alg !== undefined && jwk.alg !== "ES256") continue;
    keys.push({ kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y, alg: "ES256", use: "sig", ...(typeof jwk.kid === "string" ? { kid: jwk.kid } : {}) });
  }
  if (keys.length === 0) throw new TypeError("no usable keys");
  return { keys };
}

/** Fixed keys (--jwks): only their public parts are used. */
export function localKeys(jwks: { keys: unknown[] }): KeySource {
  return createLocalJWKSet(parseJwks(JSON.stringify(jwks)));
}

/** fetch with a size cap: the edge's JWKS is a few keys, anything much larger is refused. */
const boundedFetch: FetchImplementation = async (url, init) => {
  const res = await fetch(url, init);
  if (res.status !== 200) {
    await res.body?.cancel();
    return new Response(null, { status: res.status });
  }
  const text = await res.text();
  if (text.length > MAX_JWKS_BYTES) throw new errors.JWKSInvalid("JWKS too large");
  return new Response(text, { status: 200, headers: res.headers });
};

/**
 * The edge's JWKS over HTTP, through jose's remote set: fetched on first use, shared by concurrent callers, refreshed
 * when stale, refetched for an unknown kid at most once per cooldown. Around it: a failed fetch pauses further attempts
 * (refusing at once rather than keeping every request waiting), and the keys of the last good fetch stay usable for
 * JWKS_MAX_STALE_MS while refreshes fail.
 */
export function edgeKeys(url: string, options: { cooldownMs?: number } = {}): KeySource {
  const cooldownMs = options.cooldownMs ?? JWKS_COOLDOWN_MS;
  const cache: Partial<ExportedJWKSCache> = {};
  const remote = createRemoteJWKSet(new URL(url), {
    cooldownDuration: cooldownMs,
    cacheMaxAge: JWKS_MAX_AGE_MS,
    timeoutDuration: FETCH_TIMEOUT_MS,
    [jwksCache]: cache as JWKSCacheInput,
    [customFetch]: boundedFetch,
  });
  let failedAt = -Infinity;
  let lastGood: { uat: number; keys: KeySource } | null = null;

  /** The keys of the last good fetch while they are recent enough; otherwise `err` (the origin fails closed). */
  const fallback = (err: unknown): KeySource => {
    if (!cache.jwks || cache.uat === undefined || Date.now() - cache.uat > JWKS_MAX_STALE_MS) throw err;
    if (lastGood?.uat !== cache.uat) lastGood = { uat: cache.uat, keys: createLocalJWKSet(cache.jwks) };
    return lastGood.keys;
  };

  return async (header, token) => {
    if (Date.now() - failedAt < (cache.jwks ? cooldownMs : FAILED_FETCH_PAUSE_MS)) {
      return fallback(new errors.JOSEError("the edge's JWKS is unreachable"))(header, token);
    }
    try {
      return await remote(header, token);
    } catch (err) {
      // No key for this kid is an answer from the JWKS; anything else means the JWKS could not be had.
      if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) throw err;
      failedAt = Date.now();
      return fallback(err)(header, token);
    }
  };
}
