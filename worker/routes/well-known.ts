// Publishes Outpost's issuer metadata and public keys, which the origin and CLI use to verify its tokens.
import { Hono } from "hono";
import { authConfigOf } from "../auth/middleware.ts";
import { ownKeys } from "../auth/keys.ts";
import type { AppEnv } from "../types.ts";

export const wellKnown = new Hono<AppEnv>();

wellKnown.get("/jwks.json", (c) => {
  const auth = authConfigOf(c);
  c.header("Cache-Control", "public, max-age=300");
  return c.json(ownKeys(auth).jwks);
});

wellKnown.get("/openid-configuration", (c) => {
  const auth = authConfigOf(c);
  const base = auth.issuer;
  c.header("Cache-Control", "public, max-age=300");
  return c.json({
    issuer: base,
    jwks_uri: `${base}/.well-known/jwks.json`,
    device_authorization_endpoint: `${base}/auth/device/code`,
    token_endpoint: `${base}/auth/device/token`,
    revocation_endpoint: `${base}/auth/logout`,
    grant_types_supported: ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
    response_types_supported: [],
    token_endpoint_auth_methods_supported: ["none"],
    id_token_signing_alg_values_supported: ["ES256"],
    auth_provider: auth.provider,
    ...(auth.supabase ? { supabase_url: auth.supabase.url } : {}),
    ...(auth.supabase?.anonKey ? { supabase_anon_key: auth.supabase.anonKey } : {}),
  });
});
