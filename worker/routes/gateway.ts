// The catch-all for proxied paths: authenticate, limit writes, sign an assertion, forward to the origin.
import { Hono, type Context, type Next } from "hono";
import { accountStub } from "../../durable-objects/account/index.ts";
import { ASSERTION_HEADER } from "../../shared/assertion.ts";
import { getConfig, isProxyPath, roleFor } from "../../shared/settings/index.ts";
import { mintAssertion } from "../auth/assertion.ts";
import { grantedRoles } from "../auth/grants.ts";
import { rememberDeviceStatus } from "../auth/identity-cache.ts";
import { authConfigOf, requireAuth } from "../auth/middleware.ts";
import { OutpostError } from "../../shared/errors.ts";
import { proxyToOrigin } from "../proxy/index.ts";
import { relayWebSocket } from "../proxy/websocket.ts";
import { reportOriginOutcome } from "./presence.ts";
import type { AppEnv } from "../types.ts";

export const gateway = new Hono<AppEnv>();

/** Resolves the config and lets only proxied paths through; everything else falls to the 404 handler. */
async function proxiedOnly(c: Context<AppEnv>, next: Next) {
  const result = getConfig(c.env);
  if (!result.ok) {
    throw new OutpostError("CONFIG_INVALID", "The gateway is not configured; see /ready.", {
      detail: result.problems.map((p) => p.setting).join(","),
    });
  }
  const path = new URL(c.req.url).pathname;
  if (!isProxyPath(result.config, path)) return c.notFound();
  c.set("config", result.config);
  const websocket = c.req.header("upgrade")?.toLowerCase() === "websocket";
  const origin = c.req.header("origin");
  if (websocket && origin && !result.config.corsOrigins.has(origin)) {
    throw new OutpostError("FORBIDDEN_ORIGIN", "WebSocket connections from this origin are not allowed.");
  }
  await next();
}

gateway.all("*", proxiedOnly, requireAuth({ wsTicket: true, scopedCookie: true }), async (c) => {
  const auth = authConfigOf(c);
  const identity = c.get("identity");
  const url = new URL(c.req.url);
  // A ticket is spent at the edge (or refused, off an upgrade); the origin never sees one.
  if (url.searchParams.has("ticket")) url.searchParams.delete("ticket");
  const pathAndQuery = url.pathname + url.search;
  const assertion = await mintAssertion(auth, identity, c.req.method, pathAndQuery);
  const outcome = proxyToOrigin(c, c.get("config"), {
    pathAndQuery,
    extraHeaders: { [ASSERTION_HEADER]: assertion },
    dropCredentials: true,
    relayWebSocket: (upstream, response) =>
      relayWebSocket(upstream, response, {
        expiresAtMs: identity.exp * 1000,
        // Every 30 s: the device still stands and the account still has a role (grants can be removed).
        stillValid: async () => {
          if (!roleFor(auth, identity.email, await grantedRoles(c.env))) return false;
          if (!identity.deviceId) return true;
          const device = await accountStub(c.env).getDevice(identity.deviceId);
          const ok = !!device && device.revokedAt === null;
          rememberDeviceStatus(auth, identity.deviceId, !ok);
          return ok;
        },
      }),
  });
  try {
    const res = await outcome;
    reportOriginOutcome(c.env, c.executionCtx, true);
    return res;
  } catch (err) {
    // Phones learn the origin went away from real traffic, not only from the hub's 30 s probe.
    if (err instanceof OutpostError && (err.code === "ORIGIN_UNREACHABLE" || err.code === "ORIGIN_TIMEOUT")) {
      reportOriginOutcome(c.env, c.executionCtx, false);
    }
    throw err;
  }
});
