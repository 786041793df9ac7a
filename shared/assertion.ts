// The assertion the edge adds to every request it forwards to the origin: its header, typ, claims, signer and verifier.
import { errors, importJWK, jwtVerify, SignJWT, type JWK, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions } from "jose";

/** Lower-case, as Node keys `req.headers`; header names are case-insensitive on the wire. */
export const ASSERTION_HEADER = "outpost-assertion";
export const ASSERTION_TYP = "outpost-assertion+jwt";
/** The origin's audience unless ORIGIN_AUDIENCE says otherwise. */
export const ASSERTION_AUDIENCE = "origin";
/** Seconds an assertion lives; it opens one request, so it needs no more. */
export const ASSERTION_LIFETIME_S = 60;
const ASSERTION_ALGORITHMS = ["ES256"];
export const ASSERTION_CLOCK_TOLERANCE_S = 5;
/** Larger assertions are refused before any parsing or crypto. */
const MAX_ASSERTION_LENGTH = 8192;
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const MAX_JTI_LENGTH = 200;

/** Who the edge verified (sub, email, role), which request the assertion opens (htm, htu), and its single-use id. */
export interface AssertionClaims {
  sub: string;
  email: string;
  role: string;
  /** The method, upper-case. */
  htm: string;
  /** The path and query exactly as sent to the origin. */
  htu: string;
  jti: string;
  /** base64url SHA-256 of the body, when the body is signed too (the presence outbox's event batches). */
  body_sha256?: string;
}

/** The claims of a verified assertion, with its times (seconds since the epoch). */
export type VerifiedAssertion = AssertionClaims & { iat: number; exp: number };

/** The edge's side: its private ES256 JWK, its issuer (PUBLIC_URL's origin) and the origin's audience. */
export interface AssertionSigner {
  signingKey: JWK & { kid: string };
  issuer: string;
  originAudience: string;
}

/** The jwtVerify options for an assertion: the ones the edge uses for its own tokens, with the assertion's typ and lifetime. */
function assertionVerifyOptions(issuer: string, audience: string, clockTolerance = ASSERTION_CLOCK_TOLERANCE_S): JWTVerifyOptions {
  return {
    algorithms: ASSERTION_ALGORITHMS,
    issuer,
    audience,
    typ: ASSERTION_TYP,
    requiredClaims: ["exp", "iat", "sub", "jti", "htm", "htu"],
    maxTokenAge: ASSERTION_LIFETIME_S + clockTolerance,
    clockTolerance,
  };
}

const signingKeys = new Map<string, ReturnType<typeof importJWK>>();

/** Imports a private signing JWK once per process or isolate. */
export function importSigningKey(jwk: JWK & { kid: string }): ReturnType<typeof importJWK> {
  const cacheKey = `${jwk.kid}:${jwk.d}`;
  let key = signingKeys.get(cacheKey);
  if (!key) {
    key = importJWK({ ...jwk, alg: "ES256" }, "ES256");
    // A failed import must not stay cached.
    key.catch(() => signingKeys.delete(cacheKey));
    signingKeys.set(cacheKey, key);
  }
  return key;
}

/** Signs an assertion: ES256 with the signer's kid, a fresh jti, valid for ASSERTION_LIFETIME_S from now. */
export async function signAssertion(signer: AssertionSigner, claims: Omit<AssertionClaims, "jti">): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const { sub, ...rest } = claims;
  return new SignJWT(rest)
    .setProtectedHeader({ alg: "ES256", typ: ASSERTION_TYP, kid: signer.signingKey.kid })
    .setIssuer(signer.issuer)
    .setAudience(signer.originAudience)
    .setSubject(sub)
    .setJti(crypto.randomUUID())
    .setIssuedAt(now)
    .setExpirationTime(now + ASSERTION_LIFETIME_S)
    .sign(await importSigningKey(signer.signingKey));
}

/** The key resolver, refusing a header without a kid: a key is always named, never the only one picked by default. */
function namedKey(keys: JWTVerifyGetKey): JWTVerifyGetKey {
  return (header, token) => {
    if (typeof header.kid !== "string") throw new errors.JWSInvalid("no kid");
    return keys(header, token);
  };
}

const claimFailed = (payload: JWTPayload, claim: string, message: string) => new errors.JWTClaimValidationFailed(message, payload, claim, "check_failed");

/**
 * Checks an assertion's signature and claims (keys named by jku, x5u or an embedded jwk are never consulted, a crit
 * header is refused) and returns its claims; throws jose's errors. Binding to the request and replay are the caller's.
 */
export async function verifyAssertion(
  token: string,
  keys: JWTVerifyGetKey,
  options: { issuer: string; audience: string; clockTolerance?: number },
): Promise<VerifiedAssertion> {
  if (token.length > MAX_ASSERTION_LENGTH) throw new errors.JWSInvalid("assertion too large");
  if (!JWT_SHAPE.test(token)) throw new errors.JWSInvalid("not a compact JWS");
  const { payload, protectedHeader } = await jwtVerify(token, namedKey(keys), assertionVerifyOptions(options.issuer, options.audience, options.clockTolerance));
  if (protectedHeader.crit !== undefined) throw new errors.JWSInvalid("crit header");
  // jose checked that exp and iat are numbers (both are required claims).
  const exp = payload.exp as number;
  const iat = payload.iat as number;
  if (exp - iat > ASSERTION_LIFETIME_S) throw claimFailed(payload, "exp", "lifetime too long");
  const { sub, jti, htm, htu, email, role, body_sha256 } = payload;
  if (typeof sub !== "string" || !sub) throw claimFailed(payload, "sub", "bad sub");
  if (typeof jti !== "string" || !jti || jti.length > MAX_JTI_LENGTH) throw claimFailed(payload, "jti", "bad jti");
  if (typeof htm !== "string" || typeof htu !== "string") throw claimFailed(payload, "htu", "bad htm or htu");
  return {
    sub,
    email: typeof email === "string" ? email : "",
    role: typeof role === "string" ? role : "",
    htm,
    htu,
    jti,
    iat,
    exp,
    ...(typeof body_sha256 === "string" ? { body_sha256 } : {}),
  };
}
