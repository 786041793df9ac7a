// Publishes Outpost's authorization server metadata (RFC 8414) and public keys, which OAuth clients, the origin and
// the CLI use to find its endpoints and verify its tokens.
import { Hono, type Context } from "hono";
import { authConfigOf } from "../auth/middleware.ts";
import { ownKeys } from "../auth/keys.ts";
import { DEVICE_CODE_GRANT, type OpenIdConfiguration } from "../../shared/identity.ts";
import { PATHS } from "../../shared/paths.ts";
import type { AppEnv } from "../types.ts";

export const wellKnown = new Hono<AppEnv>();

wellKnown.get("/jwks.json", (c) => {
  const auth = authConfigOf(c);
  c.header("Cache-Control", "public, max-age=300");
  return c.json(ownKeys(auth).jwks);
});

/**
 * RFC 8414 §2, for what Outpost does: no authorization endpoint (so no response types), the device grant and
 * refresh_token at the token endpoint, RFC 7009 revocation, and public clients only (`none`: the default would be
 * client_secret_basic). `issuer` is PUBLIC_URL's origin, exactly the URL the document is found under (§3.3).
 */
function metadata(c: Context<AppEnv>) {
  const auth = authConfigOf(c);
  const base = auth.issuer;
  c.header("Cache-Control", "public, max-age=300");
  return c.json({
    issuer: base,
    jwks_uri: `${base}${PATHS.jwks}`,
    device_authorization_endpoint: `${base}${PATHS.deviceCode}`,
    token_endpoint: `${base}${PATHS.token}`,
    revocation_endpoint: `${base}${PATHS.revoke}`,
    grant_types_supported: [DEVICE_CODE_GRANT, "refresh_token"],
    response_types_supported: [],
    token_endpoint_auth_methods_supported: ["none"],
    revocation_endpoint_auth_methods_supported: ["none"],
    auth_provider: auth.provider,
    ...(auth.supabase ? { supabase_url: auth.supabase.url } : {}),
    ...(auth.supabase?.anonKey ? { supabase_anon_key: auth.supabase.anonKey } : {}),
  } satisfies OpenIdConfiguration);
}

wellKnown.get("/openid-configuration", metadata);
wellKnown.get("/oauth-authorization-server", metadata);
