// Helpers for the identity tests: call the Worker with settings overridden, and mint tokens with real keys.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { importJWK, SignJWT, type JWK, type JWTPayload } from "jose";
import worker from "../../../worker/index.ts";

export type TestEnv = Env & { TEST_PREVIOUS_SIGNING_KEY: string };
export const testEnv = env as TestEnv;
export const BASE = "https://outpost.example.com";
export const ISSUER = BASE;

export async function call(path: string, init: RequestInit = {}, overrides: Partial<TestEnv> = {}): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(`${BASE}${path}`, init), { ...testEnv, ...overrides }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

export interface MintOptions {
  key?: JWK;
  alg?: string;
  typ?: string;
  kid?: string;
  header?: Record<string, unknown>;
  iatOffset?: number;
  ttl?: number;
  omit?: ("exp" | "iat" | "sub" | "jti" | "iss" | "aud")[];
}

/** Signs a JWT with a real key; defaults describe a valid Outpost access token for the owner. */
export async function mint(claims: JWTPayload, options: MintOptions = {}): Promise<string> {
  const jwk = options.key ?? (JSON.parse(testEnv.OUTPOST_SIGNING_KEY) as JWK);
  const alg = options.alg ?? "ES256";
  const key = await importJWK(jwk, alg);
  const now = Math.floor(Date.now() / 1000) + (options.iatOffset ?? 0);
  const omit = new Set(options.omit ?? []);
  const payload: JWTPayload = {
    iss: ISSUER,
    aud: "outpost",
    sub: "outpost:owner@example.com",
    email: "owner@example.com",
    jti: crypto.randomUUID(),
    iat: now,
    exp: now + (options.ttl ?? 600),
    ...claims,
  };
  for (const k of omit) delete payload[k];
  return new SignJWT(payload)
    .setProtectedHeader({ alg, typ: options.typ ?? "at+jwt", kid: options.kid ?? jwk.kid, ...options.header })
    .sign(key);
}

export function bearer(token: string): RequestInit {
  return { headers: { authorization: `Bearer ${token}` } };
}

export async function errorOf(res: Response): Promise<{ code: string; message: string; requestId: string }> {
  const body = await res.json<{ error: { code: string; message: string; requestId: string } }>();
  return body.error;
}
