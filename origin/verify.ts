// Verifies that a request reached the origin through the Outpost edge: its signed, single-use, request-bound assertion.
import { verify as verifySignature } from "node:crypto";
import { parseJwks, remoteKeys, staticKeys, type KeySource } from "./keys.ts";

export { JWKS_COOLDOWN_MS, JWKS_MAX_AGE_MS, parseJwks, type KeySource, type PublicJwk } from "./keys.ts";

export const ASSERTION_HEADER = "outpost-assertion";
export const ASSERTION_TYP = "outpost-assertion+jwt";
const MAX_LIFETIME_S = 60;
const MAX_TOKEN_LENGTH = 8192;
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const REQUIRED = ["exp", "iat", "jti", "sub", "htm", "htu"] as const;

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
  /** A custom key source (replaces jwks and jwksUrl). */
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

/** Why a request was refused; the code is stable, the message is generic on purpose. */
export class OutpostVerifyError extends Error {
  readonly code = "AUTH_INVALID";
  readonly status = 401;
  readonly reason: string;
  constructor(reason: string) {
    super("This request did not come through the Outpost edge.");
    this.name = "OutpostVerifyError";
    this.reason = reason;
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
export function keySourceOf(options: VerifyOptions): KeySource {
  if (options.keys) return options.keys;
  if (options.jwks) return staticKeys(parseJwks(JSON.stringify(options.jwks)));
  const from = options.jwksUrl ?? (options.edgeUrl ? new URL("/.well-known/jwks.json", options.edgeUrl).href : null);
  if (!from) throw new TypeError("createOutpostVerifier: give edgeUrl (where the JWKS lives), jwksUrl, jwks or keys");
  return remoteKeys(from, { cooldownMs: options.jwksCooldownMs });
}

function decodeJson(segment: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));
  } catch {
    throw new OutpostVerifyError(`${what} is not JSON`);
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) throw new OutpostVerifyError(`${what} is not an object`);
  return value as Record<string, unknown>;
}

/**
 * ES256 only, typ outpost-assertion+jwt, a kid the edge publishes; jku, x5u and embedded jwk headers are never
 * consulted, and a crit header is refused. Signatures are checked with node:crypto (OpenSSL), synchronously.
 */
export function createOutpostVerifier(options: VerifyOptions): OutpostVerifier {
  const issuerUrl = options.issuer ?? options.edgeUrl;
  if (!issuerUrl || !URL.canParse(issuerUrl)) throw new TypeError("createOutpostVerifier: the issuer (edgeUrl or issuer) must be a URL");
  const issuer = new URL(issuerUrl).origin;
  const audience = options.audience || "origin";
  const tolerance = options.clockToleranceSeconds ?? 5;
  const keys = keySourceOf(options);
  const replay = new ReplayCache(options.replayCacheSize ?? 1_000_000);
  // Ids used before this verifier existed are unknown to its replay cache: older assertions are refused.
  const bornAt = Math.floor(Date.now() / 1000);

  return async function verifyOutpostAssertion(facts: RequestFacts): Promise<OutpostIdentity> {
    const token = facts.assertion;
    if (!token) throw new OutpostVerifyError("no assertion");
    if (token.length > MAX_TOKEN_LENGTH) throw new OutpostVerifyError("assertion too large");
    if (!JWT_SHAPE.test(token)) throw new OutpostVerifyError("not a compact JWS");
    const [h, p, s] = token.split(".") as [string, string, string];
    const header = decodeJson(h, "header");
    if (header.alg !== "ES256") throw new OutpostVerifyError(`alg ${String(header.alg)}`);
    if (header.typ !== ASSERTION_TYP) throw new OutpostVerifyError(`typ ${String(header.typ)}`);
    if (header.crit !== undefined) throw new OutpostVerifyError("crit header");
    if (typeof header.kid !== "string") throw new OutpostVerifyError("no kid");
    let key;
    try {
      key = await keys.get(header.kid);
    } catch (err) {
      // No reachable JWKS ends here: the origin fails closed.
      throw new OutpostVerifyError(`no keys: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!key) throw new OutpostVerifyError(`unknown kid ${header.kid}`);
    const signature = Buffer.from(s, "base64url");
    if (signature.byteLength !== 64) throw new OutpostVerifyError("bad signature length");
    if (!verifySignature("sha256", Buffer.from(`${h}.${p}`), { key, dsaEncoding: "ieee-p1363" }, signature)) {
      throw new OutpostVerifyError("bad signature");
    }

    const claims = decodeJson(p, "payload");
    for (const name of REQUIRED) if (claims[name] === undefined) throw new OutpostVerifyError(`missing ${name}`);
    const { exp, iat, nbf, jti, sub, aud } = claims;
    if (typeof exp !== "number" || typeof iat !== "number" || !Number.isFinite(exp) || !Number.isFinite(iat)) throw new OutpostVerifyError("bad exp or iat");
    const now = Math.floor(Date.now() / 1000);
    if (claims.iss !== issuer) throw new OutpostVerifyError("wrong issuer");
    if (aud !== audience && !(Array.isArray(aud) && aud.includes(audience))) throw new OutpostVerifyError("wrong audience");
    if (exp <= now - tolerance) throw new OutpostVerifyError("expired");
    if (iat > now + tolerance) throw new OutpostVerifyError("issued in the future");
    if (nbf !== undefined && (typeof nbf !== "number" || nbf > now + tolerance)) throw new OutpostVerifyError("not yet valid");
    if (exp - iat > MAX_LIFETIME_S) throw new OutpostVerifyError("lifetime too long");
    if (now - iat > MAX_LIFETIME_S + tolerance) throw new OutpostVerifyError("too old");
    if (iat < bornAt - tolerance) throw new OutpostVerifyError("issued before this origin started");
    if (typeof jti !== "string" || jti.length === 0 || jti.length > 200) throw new OutpostVerifyError("bad jti");
    if (typeof sub !== "string" || !sub) throw new OutpostVerifyError("bad sub");
    if (claims.htm !== facts.method.toUpperCase()) throw new OutpostVerifyError("bound to another method");
    if (claims.htu !== facts.pathAndQuery) throw new OutpostVerifyError("bound to another path");
    if (!replay.use(jti, exp + tolerance)) throw new OutpostVerifyError("replayed");
    return {
      sub,
      email: typeof claims.email === "string" ? claims.email : "",
      role: typeof claims.role === "string" ? claims.role : "",
      ...(typeof claims.body_sha256 === "string" ? { bodySha256: claims.body_sha256 } : {}),
    };
  };
}
