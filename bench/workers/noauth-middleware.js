// BENCH ONLY, never deployed: worker/auth/middleware.ts with a requireAuth that checks nothing. It sets a fixed owner
// identity, so the gateway runs as usual (roles, write limit, assertion) minus reading and checking the credential.
// bench/worker-build.ts swaps it in for the real module; everything else is re-exported from the real module.
import { createMiddleware } from "hono/factory";
import { authConfigOf } from "../../worker/auth/middleware.ts";

export * from "../../worker/auth/middleware.ts";

const OWNER = "owner@example.com";

export function requireAuth() {
  return createMiddleware(async function requireAuth(c, next) {
    // Kept: the real middleware refuses a gateway without settings; this lookup is a cached WeakMap hit.
    authConfigOf(c);
    c.set("identity", {
      sub: `outpost:${OWNER}`,
      email: OWNER,
      role: "owner",
      provider: "outpost",
      deviceId: null,
      exp: Math.floor(Date.now() / 1000) + 900,
    });
    await next();
  });
}
