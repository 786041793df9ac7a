// The edge's public keys for the origin: a fixed JWKS, or the edge's /.well-known/jwks.json fetched lazily and cached.
import { createPublicKey, type KeyObject } from "node:crypto";

/** An unknown kid refetches the edge's JWKS at most this often. */
export const JWKS_COOLDOWN_MS = 30_000;
/** A fetched JWKS is refreshed on first use after this long. */
export const JWKS_MAX_AGE_MS = 10 * 60_000;
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

/** Finds the verification key for a kid; null when there is none (after at most one refetch per cooldown). */
export interface KeySource {
  get(kid: string): Promise<KeyObject | null>;
}

/**
 * Parses a JWKS given as JSON text: {"keys":[...]}, a single JWK, or an array of JWKs. Only P-256 EC keys are kept
 * (private parts dropped); `strict` refuses anything else instead of skipping it.
 */
export function parseJwks(text: string, strict = true): { keys: PublicJwk[] } {
  const parsed = JSON.parse(text) as unknown;
  const list = Array.isArray(parsed) ? parsed : parsed && typeof parsed === "object" && "keys" in parsed ? (parsed as { keys: unknown }).keys : [parsed];
  if (!Array.isArray(list)) throw new TypeError("no keys");
  const keys: PublicJwk[] = [];
  for (const jwk of list as Record<string, unknown>[]) {
    if (!jwk || typeof jwk !== "object" || jwk.kty !== "EC" || jwk.crv !== "P-256" || typeof jwk.x !== "string" || typeof jwk.y !== "string") {
      if (strict) throw new TypeError("every key must be a P-256 EC JWK");
      continue;
    }
    if (jwk.alg !== undefined && jwk.alg !== "ES256") continue;
    keys.push({ kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y, alg: "ES256", use: "sig", ...(typeof jwk.kid === "string" ? { kid: jwk.kid } : {}) });
  }
  if (keys.length === 0) throw new TypeError("no usable keys");
  return { keys };
}

function importKeys(keys: PublicJwk[]): Map<string, KeyObject> {
  const map = new Map<string, KeyObject>();
  for (const jwk of keys) {
    if (jwk.kid === undefined) continue;
    map.set(jwk.kid, createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, format: "jwk" }));
  }
  return map;
}

export function staticKeys(jwks: { keys: PublicJwk[] } | { keys: unknown[] }): KeySource {
  const map = importKeys(parseJwks(JSON.stringify(jwks)).keys);
  return { get: async (kid) => map.get(kid) ?? null };
}

/** The edge's JWKS over HTTP: fetched on first use, shared by concurrent callers, refreshed when stale or for a new kid. */
export function remoteKeys(url: string, options: { cooldownMs?: number; maxAgeMs?: number } = {}): KeySource {
  const cooldownMs = options.cooldownMs ?? JWKS_COOLDOWN_MS;
  const maxAgeMs = options.maxAgeMs ?? JWKS_MAX_AGE_MS;
  let keys: Map<string, KeyObject> | null = null;
  let fetchedAt = 0;
  let attemptedAt = -Infinity;
  let pending: Promise<void> | null = null;
  let failedAt = -Infinity;

  async function load(): Promise<void> {
    attemptedAt = Date.now();
    const res = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), redirect: "error", headers: { accept: "application/json" } });
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(`JWKS answered ${res.status}`);
    }
    const text = await res.text();
    if (text.length > MAX_JWKS_BYTES) throw new Error("JWKS too large");
    keys = importKeys(parseJwks(text, false).keys);
    fetchedAt = Date.now();
  }

  /** One fetch at a time; a failed refresh keeps the keys fetched before (within JWKS_MAX_STALE_MS). */
  function refresh(): Promise<void> {
    pending ??= load().finally(() => {
      pending = null;
    });
    return pending.catch((err: unknown) => {
      failedAt = Date.now();
      if (!keys || Date.now() - fetchedAt > JWKS_MAX_STALE_MS) {
        keys = null;
        throw err;
      }
    });
  }

  return {
    async get(kid) {
      const now = Date.now();
      if (!keys && now - failedAt < FAILED_FETCH_PAUSE_MS) throw new Error("the edge's JWKS is unreachable");
      if (!keys || (now - fetchedAt > maxAgeMs && now - attemptedAt >= cooldownMs)) await refresh();
      const key = keys!.get(kid);
      if (key) return key;
      if (Date.now() - attemptedAt < cooldownMs) return null;
      await refresh();
      return keys?.get(kid) ?? null;
    },
  };
}
