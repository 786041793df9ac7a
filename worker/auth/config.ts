// Parses the identity settings (provider, keys, access list) once per env object; problems name settings only.
import type { JWK } from "jose";
import type { ConfigProblem } from "../config.ts";

import type { Provider, Role } from "../../shared/identity.ts";

export type { Provider, Role };

export interface AuthConfig {
  provider: Provider;
  /** Issuer of Outpost's own tokens: PUBLIC_URL's origin. */
  issuer: string;
  signingKey: JWK & { kid: string };
  previousKeys: (JWK & { kid: string })[];
  supabase: { url: string; issuer: string; jwksUrl: string; jwtSecret: string | null; anonKey: string | null } | null;
  roles: ReadonlyMap<string, Role>;
  hasOwner: boolean;
  originAudience: string;
  maxTokenAgeSeconds: number;
  deviceLoginIntervalSeconds: number;
}

export type AuthConfigResult = { ok: true; auth: AuthConfig } | { ok: false; problems: ConfigProblem[] };

type RawEnv = Partial<Record<string, unknown>>;
const cache = new WeakMap<object, AuthConfigResult>();

export function getAuthConfig(env: object): AuthConfigResult {
  let result = cache.get(env);
  if (!result) {
    result = parseAuthConfig(env as RawEnv);
    cache.set(env, result);
  }
  return result;
}

const EMAIL = /^[^\s@,]+@[^\s@,]+$/;

export function parseAuthConfig(env: RawEnv): AuthConfigResult {
  const problems: ConfigProblem[] = [];
  const str = (name: string): string => (typeof env[name] === "string" ? (env[name] as string).trim() : "");

  const providerRaw = str("AUTH_PROVIDER") || "outpost";
  let provider: Provider = "outpost";
  if (providerRaw === "outpost" || providerRaw === "supabase") provider = providerRaw;
  else problems.push({ setting: "AUTH_PROVIDER", reason: 'must be "outpost" or "supabase"' });

  const publicUrl = str("PUBLIC_URL");
  const issuer = URL.canParse(publicUrl) ? new URL(publicUrl).origin : "";
  if (!issuer) problems.push({ setting: "PUBLIC_URL", reason: "is required: it is the issuer of Outpost's tokens" });

  const signingKey = parseJwk(str("OUTPOST_SIGNING_KEY"), true);
  if (!signingKey) {
    problems.push({ setting: "OUTPOST_SIGNING_KEY", reason: "must be an ES256 (P-256) private JWK with a kid" });
  }
  const previousKeys: (JWK & { kid: string })[] = [];
  const prevRaw = str("OUTPOST_PREVIOUS_KEYS");
  if (prevRaw) {
    let list: unknown;
    try {
      list = JSON.parse(prevRaw);
    } catch {
      list = null;
    }
    const items = Array.isArray(list) ? list : (list as { keys?: unknown } | null)?.keys;
    const parsed = Array.isArray(items) ? items.map((k) => parseJwk(JSON.stringify(k), false)) : [null];
    if (parsed.some((k) => !k)) {
      problems.push({ setting: "OUTPOST_PREVIOUS_KEYS", reason: "must be a JSON array (or JWKS) of ES256 public JWKs with kids" });
    } else previousKeys.push(...(parsed as (JWK & { kid: string })[]));
  }

  let supabase: AuthConfig["supabase"] = null;
  const supabaseUrl = str("SUPABASE_URL").replace(/\/+$/, "");
  if (provider === "supabase" || supabaseUrl) {
    const parsed = URL.canParse(supabaseUrl) ? new URL(supabaseUrl) : null;
    if (!parsed || (parsed.protocol !== "https:" && parsed.protocol !== "http:")) {
      problems.push({ setting: "SUPABASE_URL", reason: "must be the project URL, e.g. https://<ref>.supabase.co" });
    } else {
      const jwtSecret = str("SUPABASE_JWT_SECRET");
      if (jwtSecret && jwtSecret.length < 32) {
        problems.push({ setting: "SUPABASE_JWT_SECRET", reason: "must be at least 32 characters" });
      }
      // A SUPABASE_URL left set under AUTH_PROVIDER=outpost is checked but trusted for nothing.
      if (provider === "supabase") {
        supabase = {
          url: supabaseUrl,
          issuer: `${supabaseUrl}/auth/v1`,
          jwksUrl: `${supabaseUrl}/auth/v1/.well-known/jwks.json`,
          jwtSecret: jwtSecret || null,
          // Public by design (the web app signs in with it); published in the openid-configuration.
          anonKey: str("SUPABASE_ANON_KEY") || null,
        };
      }
    }
  }

  const roles = new Map<string, Role>();
  // Later lists never downgrade an earlier, stronger role for the same email.
  for (const [setting, role] of [["OWNER_EMAILS", "owner"], ["MEMBER_EMAILS", "member"], ["VIEWER_EMAILS", "viewer"]] as const) {
    for (const item of str(setting).split(",").map((s) => s.trim().toLowerCase()).filter(Boolean)) {
      if (!EMAIL.test(item)) {
        problems.push({ setting, reason: "must be a comma-separated list of email addresses" });
        break;
      }
      if (!roles.has(item)) roles.set(item, role);
    }
  }

  const originAudience = str("ORIGIN_AUDIENCE") || "origin";
  const ageRaw = str("MAX_TOKEN_AGE_SECONDS");
  const maxTokenAgeSeconds = ageRaw ? Number(ageRaw) : 86_400;
  if (!/^\d*$/.test(ageRaw) || !Number.isSafeInteger(maxTokenAgeSeconds) || maxTokenAgeSeconds < 60 || maxTokenAgeSeconds > 30 * 86_400) {
    problems.push({ setting: "MAX_TOKEN_AGE_SECONDS", reason: "must be an integer from 60 to 2592000" });
  }

  const intervalRaw = str("DEVICE_LOGIN_INTERVAL_SECONDS");
  const deviceLoginIntervalSeconds = /^\d+$/.test(intervalRaw) ? Number(intervalRaw) : intervalRaw ? NaN : 5;
  if (!(deviceLoginIntervalSeconds >= 1 && deviceLoginIntervalSeconds <= 60)) {
    problems.push({ setting: "DEVICE_LOGIN_INTERVAL_SECONDS", reason: "must be an integer from 1 to 60" });
  }

  if (problems.length > 0 || !signingKey) return { ok: false, problems };
  return {
    ok: true,
    auth: {
      provider,
      issuer,
      signingKey,
      previousKeys,
      supabase,
      roles,
      hasOwner: [...roles.values()].includes("owner"),
      originAudience,
      maxTokenAgeSeconds,
      deviceLoginIntervalSeconds,
    },
  };
}

function parseJwk(raw: string, isPrivate: boolean): (JWK & { kid: string }) | null {
  if (!raw) return null;
  let jwk: JWK;
  try {
    jwk = JSON.parse(raw) as JWK;
  } catch {
    return null;
  }
  if (typeof jwk !== "object" || jwk === null) return null;
  if (jwk.kty !== "EC" || jwk.crv !== "P-256" || typeof jwk.x !== "string" || typeof jwk.y !== "string") return null;
  if (typeof jwk.kid !== "string" || !/^[A-Za-z0-9._-]{1,64}$/.test(jwk.kid)) return null;
  if (isPrivate !== (typeof jwk.d === "string")) return null;
  return jwk as JWK & { kid: string };
}

/** The role an email holds, or null when it is on no list. */
export function roleFor(auth: AuthConfig, email: string | undefined, granted?: ReadonlyMap<string, Role>): Role | null {
  if (!email) return null;
  const key = email.toLowerCase();
  // Settings win over grants: an owner cannot be demoted, nor a settings entry widened, through the API.
  return auth.roles.get(key) ?? granted?.get(key) ?? null;
}
