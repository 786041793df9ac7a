// Mints single-use owner enrollment links; plain jose, so the CLI and `npm start` use the same code as the Worker.
import { SignJWT, type JWK } from "jose";
import { importSigningKey } from "./assertion.ts";

export const ENROLLMENT_TYP = "outpost-enroll+jwt";
export const ENROLLMENT_AUD = "outpost-enroll";
export const ENROLLMENT_MAX_TTL_S = 24 * 60 * 60;

export interface EnrollmentLinkOptions {
  /** The ES256 private JWK (OUTPOST_SIGNING_KEY), with its kid. */
  signingKey: JWK;
  /** PUBLIC_URL: the issuer, and where the link points. */
  publicUrl: string;
  email: string;
  ttlSeconds?: number;
}

/** The subject Outpost uses for a user it issues tokens for itself. */
export function outpostSubject(email: string): string {
  return `outpost:${email.trim().toLowerCase()}`;
}

export async function mintEnrollmentLink(options: EnrollmentLinkOptions): Promise<{ url: string; expiresIn: number }> {
  const ttl = Math.min(options.ttlSeconds ?? 60 * 60, ENROLLMENT_MAX_TTL_S);
  if (!Number.isInteger(ttl) || ttl < 60) throw new TypeError("ttlSeconds must be an integer of at least 60");
  const kid = options.signingKey.kid;
  if (!kid) throw new TypeError("the signing key needs a kid");
  const issuer = new URL(options.publicUrl).origin;
  const email = options.email.trim().toLowerCase();
  const key = await importSigningKey({ ...options.signingKey, kid });
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({ email })
    .setProtectedHeader({ alg: "ES256", typ: ENROLLMENT_TYP, kid })
    .setIssuer(issuer)
    .setAudience(ENROLLMENT_AUD)
    .setSubject(outpostSubject(email))
    .setJti(crypto.randomUUID())
    .setIssuedAt(now)
    .setExpirationTime(now + ttl)
    .sign(key);
  // The token rides in the fragment, which browsers never send to a server.
  return { url: `${issuer}/enroll#token=${token}`, expiresIn: ttl };
}
