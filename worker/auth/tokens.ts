// Mints and verifies every kind of token Outpost handles; each kind has its own typ and audience.
import { decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify, SignJWT, type JWTPayload } from "jose";
import { ASSERTION_LIFETIME_S, ASSERTION_TYP } from "../../shared/assertion.ts";
import { ENROLLMENT_AUD, ENROLLMENT_MAX_TTL_S, ENROLLMENT_TYP } from "../../shared/enrollment.ts";
import { OutpostError } from "../../shared/errors.ts";
import type { Provider, Role } from "../../shared/identity.ts";
import { roleFor, type AuthConfig } from "../../shared/settings/index.ts";
import { getSigner, ownKeys, supabaseKeySet, supabaseSecret } from "./keys.ts";

export const TOKEN_KINDS = {
  access: { typ: "at+jwt", aud: "outpost", ttl: 15 * 60 },
  assertion: { typ: ASSERTION_TYP, aud: "", ttl: ASSERTION_LIFETIME_S },
  scoped: { typ: "outpost-scoped+jwt", aud: "outpost-scoped", ttl: 15 * 60 },
  enrollment: { typ: ENROLLMENT_TYP, aud: ENROLLMENT_AUD, ttl: ENROLLMENT_MAX_TTL_S },
  wsTicket: { typ: "outpost-ws-ticket+jwt", aud: "outpost-ws", ttl: 30 },
} as const;
export type TokenKind = keyof typeof TOKEN_KINDS;

/** Larger tokens are refused before any parsing or crypto. */
const MAX_TOKEN_LENGTH = 8192;
const CLOCK_TOLERANCE_S = 5;
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export interface Identity {
  sub: string;
  email: string;
  role: Role;
  provider: Provider;
  /** The device an Outpost-issued token belongs to; revoking it ends the token's access. */
  deviceId: string | null;
  /** Expiry of the credential, in seconds since the epoch. */
  exp: number;
}

/** Why a token was refused; only goes to logs. Clients see AUTH_INVALID whatever the reason. */
export function invalidToken(detail: string): OutpostError {
  return new OutpostError("AUTH_INVALID", "The access token is invalid or expired.", {
    detail,
    headers: { "WWW-Authenticate": 'Bearer realm="outpost", error="invalid_token"' },
  });
}

export function authRequired(): OutpostError {
  return new OutpostError("AUTH_REQUIRED", "Sign in to continue.", {
    headers: { "WWW-Authenticate": 'Bearer realm="outpost"' },
  });
}

/** Maps jose's failures (and anything else thrown while verifying) to one 401; the reason goes to logs. */
function mapVerifyError(err: unknown): OutpostError {
  if (err instanceof OutpostError) return err;
  if (err instanceof joseErrors.JOSEError) return invalidToken(`${err.code}: ${err.message}`);
  return invalidToken(err instanceof Error ? `${err.name}: ${err.message}` : "verification failed");
}

function preflight(token: string): { alg: string; iss: string } {
  if (token.length > MAX_TOKEN_LENGTH) throw invalidToken("token too large");
  if (!JWT_SHAPE.test(token)) throw invalidToken("not a compact JWS");
  try {
    const header = decodeProtectedHeader(token);
    const payload = decodeJwt(token);
    if (typeof header.alg !== "string" || typeof payload.iss !== "string") throw new Error("missing alg or iss");
    if (header.crit !== undefined) throw new Error("crit header");
    return { alg: header.alg, iss: payload.iss };
  } catch (err) {
    throw invalidToken(`malformed: ${err instanceof Error ? err.message : "?"}`);
  }
}

/** Verifies one of Outpost's own tokens of the given kind; jku, x5u and embedded jwk headers are never consulted. */
export async function verifyOwn(auth: AuthConfig, token: string, kind: TokenKind, audience?: string): Promise<JWTPayload> {
  const spec = TOKEN_KINDS[kind];
  try {
    const { iss } = preflight(token);
    if (iss !== auth.issuer) throw invalidToken("foreign issuer");
    const { payload } = await jwtVerify(token, ownKeys(auth).keySet, {
      algorithms: ["ES256"],
      issuer: auth.issuer,
      audience: audience ?? spec.aud,
      typ: spec.typ,
      requiredClaims: ["exp", "iat", "sub", "jti"],
      maxTokenAge: spec.ttl + CLOCK_TOLERANCE_S,
      clockTolerance: CLOCK_TOLERANCE_S,
    });
    // A token minted to live longer than its kind allows was not minted by this code.
    if ((payload.exp as number) - (payload.iat as number) > spec.ttl) throw invalidToken("lifetime too long");
    return payload;
  } catch (err) {
    throw mapVerifyError(err);
  }
}

/** Verifies a user's bearer token: an Outpost access token, or a Supabase user JWT when Supabase is configured. */
export async function verifyUserToken(auth: AuthConfig, token: string, granted?: ReadonlyMap<string, Role>): Promise<Identity> {
  try {
    const { alg, iss } = preflight(token);
    if (iss === auth.issuer) {
      const payload = await verifyOwn(auth, token, "access");
      return identityOf(auth, payload, "outpost", granted);
    }
    const sb = auth.supabase;
    if (!sb || iss !== sb.issuer) throw invalidToken("unknown issuer");
    const common = {
      issuer: sb.issuer,
      audience: "authenticated",
      typ: "JWT",
      requiredClaims: ["exp", "iat", "sub"],
      maxTokenAge: auth.maxTokenAgeSeconds,
      clockTolerance: CLOCK_TOLERANCE_S,
    };
    // Each key source has its own algorithm list: a public key can never verify an HMAC token.
    const { payload } =
      alg === "HS256" && sb.jwtSecret
        ? await jwtVerify(token, supabaseSecret(sb.jwtSecret), { ...common, algorithms: ["HS256"] })
        : await jwtVerify(token, supabaseKeySet(sb.jwksUrl), { ...common, algorithms: ["ES256", "RS256"] });
    if (payload.role !== "authenticated") throw invalidToken("not a user token");
    // Anonymous sign-ins carry role "authenticated" too, but no verified identity.
    if (payload.is_anonymous === true) throw invalidToken("anonymous user");
    return identityOf(auth, payload, "supabase", granted);
  } catch (err) {
    throw mapVerifyError(err);
  }
}

function identityOf(auth: AuthConfig, payload: JWTPayload, provider: Identity["provider"], granted?: ReadonlyMap<string, Role>): Identity {
  const email = typeof payload.email === "string" ? payload.email.toLowerCase() : "";
  const role = roleFor(auth, email, granted);
  if (!role) {
    throw new OutpostError("FORBIDDEN", "This account is not allowed here.", { detail: "not on the access list" });
  }
  return {
    sub: payload.sub as string,
    email,
    role,
    provider,
    // Only Outpost's own tokens name one of its devices; a foreign token's sid means something else.
    deviceId: provider === "outpost" && typeof payload.sid === "string" ? payload.sid : null,
    exp: payload.exp as number,
  };
}

/** Signs one of Outpost's own tokens. */
export async function mintOwn(
  auth: AuthConfig,
  kind: TokenKind,
  claims: Record<string, unknown> & { sub: string },
  options: { ttl?: number; audience?: string } = {},
): Promise<{ token: string; jti: string; exp: number }> {
  const spec = TOKEN_KINDS[kind];
  const signer = await getSigner(auth);
  const ttl = Math.min(options.ttl ?? spec.ttl, spec.ttl);
  const now = Math.floor(Date.now() / 1000);
  const jti = crypto.randomUUID();
  const { sub, ...rest } = claims;
  const token = await new SignJWT(rest)
    .setProtectedHeader({ alg: "ES256", typ: spec.typ, kid: signer.kid })
    .setIssuer(auth.issuer)
    .setAudience(options.audience ?? spec.aud)
    .setSubject(sub)
    .setJti(jti)
    .setIssuedAt(now)
    .setExpirationTime(now + ttl)
    .sign(signer.key);
  return { token, jti, exp: now + ttl };
}
