// Verifies that a request reached the origin through the Outpost edge: its signed, single-use, request-bound assertion.
import { errors } from "jose";
import { ASSERTION_AUDIENCE, ASSERTION_CLOCK_TOLERANCE_S, verifyAssertion, type VerifiedAssertion } from "../shared/assertion.ts";
import { OutpostError } from "../shared/errors.ts";
import { edgeKeys, localKeys, type KeySource } from "./keys.ts";

export interface OutpostIdentity {
  sub: string;
  email: string;
  role: string;
  /** base64url SHA-256 of the body the edge signed, when it signed one (event batches). */
  bodySha256?: string;
}

export interface VerifyOptions {
  /** The edge's public URL: the assertion's issuer, and where /.well-known/jwks.json lives. */
  edgeUrl?: string;
  /** The issuer when it differs from edgeUrl's origin (the edge's PUBLIC_URL; e.g. JWKS fetched over loopback). */
  issuer?: string;
  /** This origin's audience (ORIGIN_AUDIENCE), "origin" by default. */
  audience?: string;
  /** Seconds of clock skew tolerated (default 5). */
  clockToleranceSeconds?: number;
  /** The edge's public keys, for setups without a reachable edge; no JWKS is fetched then. */
  jwks?: { keys: unknown[] };
  /** Where the JWKS is fetched from when no jwks is given (default: `${edgeUrl}/.well-known/jwks.json`). */
  jwksUrl?: string;
  /** How often an unknown kid may refetch the JWKS (default 30 s). */
  jwksCooldownMs?: number;
  /** A custom key source, e.g. jose's createLocalJWKSet (replaces jwks and jwksUrl). */
  keys?: KeySource;
  /**
   * Assertions live up to 60 s: keep at most this many unexpired ids, then refuse rather than forget one.
   * The default (1,000,000, about 100 MB at most) covers over 15,000 requests a second, sustained.
   */
  replayCacheSize?: number;
}

export interface RequestFacts {
  method: string;
  /** Path and query exactly as received, e.g. "/api/tasks?limit=5". */
  pathAndQuery: string;
  assertion: string | null | undefined;
}

/** Why a request was refused: always AUTH_INVALID (401) with a generic message on purpose; the reason is for logs. */
export class OutpostVerifyError extends OutpostError {
  constructor(reason: string, cause?: unknown) {
    super("AUTH_INVALID", "This request did not come through the Outpost edge.", { detail: reason, cause });
    this.name = "OutpostVerifyError";
  }
  get reason(): string {
    return this.detail ?? "";
  }
}

/** Remembers assertion ids until they expire, so one assertion opens one request. */
class ReplayCache {
  #seen = new Map<string, number>();
  #max: number;
  #nextSweep = 0;
  constructor(max: number) {
    this.#max = max;
  }
  /** false if the id was already used. */
  use(jti: string, expSeconds: number): boolean {
    const now = Date.now() / 1000;
    if (now >= this.#nextSweep) {
      // Ids arrive roughly in expiry order (every assertion lives 60 s): drop the expired head, stop at a live one.
      for (const [id, exp] of this.#seen) {
        if (exp >= now) break;
        this.#seen.delete(id);
      }
      this.#nextSweep = now + 1;
    }
    if (this.#seen.size >= this.#max) {
      for (const [id, exp] of this.#seen) if (exp < now) this.#seen.delete(id);
      // Still full of live ids: refuse rather than forget one that could then be replayed.
      if (this.#seen.size >= this.#max) return false;
    }
    if (this.#seen.has(jti)) return false;
    this.#seen.set(jti, expSeconds);
    return true;
  }
}

export type OutpostVerifier = (facts: RequestFacts) => Promise<OutpostIdentity>;

/** The key source for the options: a custom one, fixed keys, or the edge's JWKS fetched lazily and cached. */
function keySourceOf(options: VerifyOptions): KeySource {
  if (options.keys) return options.keys;
  if (options.jwks) return localKeys(options.jwks);
  const from = options.jwksUrl ?? (options.edgeUrl ? new URL("/.well-known/jwks.json", options.edgeUrl).href : null);
  if (!from) throw new TypeError("createOutpostVerifier: give edgeUrl (where the JWKS lives), jwksUrl, jwks or keys");
  return edgeKeys(from, { cooldownMs: options.jwksCooldownMs });
}

/** jose's failures carry a code; anything else came from getting the keys (no reachable JWKS): the origin fails closed. */
function refusal(err: unknown): OutpostVerifyError {
  if (err instanceof errors.JOSEError) return new OutpostVerifyError(`${err.code}: ${err.message}`, err);
  return new OutpostVerifyError(`no keys: ${err instanceof Error ? err.message : String(err)}`, err);
}

/**
 * The shared assertion check (shared/assertion.ts: ES256, typ, iss, aud, times, a kid the edge publishes), then what
 * only the origin knows: the request it arrived with, the ids already used, and when this verifier started.
 */
export function createOutpostVerifier(options: VerifyOptions): OutpostVerifier {
  const issuerUrl = options.issuer ?? options.edgeUrl;
  if (!issuerUrl || !URL.canParse(issuerUrl)) throw new TypeError("createOutpostVerifier: the issuer (edgeUrl or issuer) must be a URL");
  const issuer = new URL(issuerUrl).origin;
  const audience = options.audience || ASSERTION_AUDIENCE;
  const clockTolerance = options.clockToleranceSeconds ?? ASSERTION_CLOCK_TOLERANCE_S;
  const keys = keySourceOf(options);
  const replay = new ReplayCache(options.replayCacheSize ?? 1_000_000);
  // Ids used before this verifier existed are unknown to its replay cache: older assertions are refused.
  const bornAt = Math.floor(Date.now() / 1000);

  return async function verifyOutpostAssertion(facts: RequestFacts): Promise<OutpostIdentity> {
    if (!facts.assertion) throw new OutpostVerifyError("no assertion");
    let claims: VerifiedAssertion;
    try {
      claims = await verifyAssertion(facts.assertion, keys, { issuer, audience, clockTolerance });
    } catch (err) {
      throw refusal(err);
    }
    if (claims.iat < bornAt - clockTolerance) throw new OutpostVerifyError("issued before this origin started");
    if (claims.htm !== facts.method.toUpperCase()) throw new OutpostVerifyError("bound to another method");
    if (claims.htu !== facts.pathAndQuery) throw new OutpostVerifyError("bound to another path");
    if (!replay.use(claims.jti, claims.exp + clockTolerance)) throw new OutpostVerifyError("replayed");
    const { sub, email, role, body_sha256 } = claims;
    return { sub, email, role, ...(body_sha256 !== undefined ? { bodySha256: body_sha256 } : {}) };
  };
}
