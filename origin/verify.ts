// Verifies that a request reached the origin through the Outpost edge: its signed, single-use, request-bound assertion.
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from "jose";

export const ASSERTION_HEADER = "outpost-assertion";
export const ASSERTION_TYP = "outpost-assertion+jwt";
const MAX_LIFETIME_S = 60;
const MAX_TOKEN_LENGTH = 8192;

export interface OutpostIdentity {
  sub: string;
  email: string;
  role: string;
  /** base64url SHA-256 of the body the edge signed, when it signed one (event batches). */
  bodySha256?: string;
}

export interface VerifyOptions {
  /** The edge's public URL: the assertion's issuer, and where /.well-known/jwks.json lives. */
  edgeUrl: string;
  /** This origin's audience (ORIGIN_AUDIENCE), "origin" by default. */
  audience?: string;
  /** Seconds of clock skew tolerated. */
  clockToleranceSeconds?: number;
  /** Key source; by default the edge's JWKS, cached, an unknown kid refetched at most once per 30 s. */
  keys?: JWTVerifyGetKey;
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
  constructor(max = 100_000) {
    this.#max = max;
  }
  /** false if the id was already used. */
  use(jti: string, expSeconds: number): boolean {
    const now = Date.now() / 1000;
    if (this.#seen.size >= this.#max || this.#seen.size % 1024 === 0) {
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

export function createOutpostVerifier(options: VerifyOptions): OutpostVerifier {
  const issuer = new URL(options.edgeUrl).origin;
  const audience = options.audience ?? "origin";
  const tolerance = options.clockToleranceSeconds ?? 5;
  const keys =
    options.keys ??
    createRemoteJWKSet(new URL("/.well-known/jwks.json", issuer), { cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000, timeoutDuration: 5_000 });
  const replay = new ReplayCache();

  return async function verifyOutpostRequest(facts: RequestFacts): Promise<OutpostIdentity> {
    const token = facts.assertion;
    if (!token) throw new OutpostVerifyError("no assertion");
    if (token.length > MAX_TOKEN_LENGTH) throw new OutpostVerifyError("assertion too large");
    let payload;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        algorithms: ["ES256"],
        typ: ASSERTION_TYP,
        issuer,
        audience,
        requiredClaims: ["exp", "iat", "jti", "sub", "htm", "htu"],
        maxTokenAge: MAX_LIFETIME_S + tolerance,
        clockTolerance: tolerance,
      }));
    } catch (err) {
      // No reachable JWKS ends here too: the origin fails closed.
      throw new OutpostVerifyError(err instanceof joseErrors.JOSEError ? `${err.code}: ${err.message}` : String(err));
    }
    if ((payload.exp as number) - (payload.iat as number) > MAX_LIFETIME_S) throw new OutpostVerifyError("lifetime too long");
    if (payload.htm !== facts.method.toUpperCase()) throw new OutpostVerifyError("bound to another method");
    if (payload.htu !== facts.pathAndQuery) throw new OutpostVerifyError("bound to another path");
    if (!replay.use(payload.jti as string, payload.exp as number)) throw new OutpostVerifyError("replayed");
    return {
      sub: payload.sub as string,
      email: typeof payload.email === "string" ? payload.email : "",
      role: typeof payload.role === "string" ? payload.role : "",
      ...(typeof payload.body_sha256 === "string" ? { bodySha256: payload.body_sha256 } : {}),
    };
  };
}
