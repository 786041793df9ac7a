// Mints the signed assertion that tells the origin a request came through the edge, for whom, and for what.
import { signAssertion } from "../../shared/assertion.ts";
import type { AuthConfig } from "../../shared/settings/index.ts";
import type { Identity } from "./tokens.ts";

/** Bound to one method and path+query, valid for 60 s, with a unique jti the origin can refuse to replay (shared/assertion.ts). */
export function mintAssertion(auth: AuthConfig, identity: Identity, method: string, pathAndQuery: string): Promise<string> {
  return signAssertion(auth, { sub: identity.sub, email: identity.email, role: identity.role, htm: method.toUpperCase(), htu: pathAndQuery });
}
