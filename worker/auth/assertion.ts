// Mints the signed assertion that tells the origin a request came through the edge, for whom, and for what.
import type { AuthConfig } from "../../shared/settings/index.ts";
import { mintOwn, type Identity } from "./tokens.ts";

export const ASSERTION_HEADER = "Outpost-Assertion";

/** An ES256 JWT bound to one method and path+query, valid for 60 s, with a unique jti the origin can refuse to replay. */
export async function mintAssertion(auth: AuthConfig, identity: Identity, method: string, pathAndQuery: string): Promise<string> {
  const { token } = await mintOwn(
    auth,
    "assertion",
    { sub: identity.sub, email: identity.email, role: identity.role, htm: method.toUpperCase(), htu: pathAndQuery },
    { audience: auth.originAudience },
  );
  return token;
}
