// Optional secrets the generated Env cannot know about (wrangler types lists only required secrets).
interface Env {
  /** Legacy Supabase projects: the HS256 JWT secret. */
  SUPABASE_JWT_SECRET?: string;
  /** Rotated Outpost public keys still accepted: a JSON array or JWKS. */
  OUTPOST_PREVIOUS_KEYS?: string;
}
