// The catch-all for proxied paths: authenticate, limit writes, sign an assertion, forward to the origin.
import { Hono, type Context, type Next } from "hono";
import { accountStub } from "../../durable-objects/account/index.ts";
import { ASSERTION_HEADER } from "../../shared/assertion.ts";
import { getConfig, isProxyPath, isViewerWebSocketPath, roleFor, type AuthConfig } from "../../shared/settings/index.ts";
import { mintAssertion } from "../auth/assertion.ts";
import { grantedRoles } from "../auth/grants.ts";
import { rememberDeviceStatus } from "../auth/identity-cache.ts";
import { authConfigOf, requireAuth } from "../auth/middleware.ts";
import type { Identity } from "../auth/tokens.ts";
import { OutpostError } from "../../shared/errors.ts";
import { proxyToOrigin } from "../proxy/index.ts";
import { relayWebSocket } from "../proxy/websocket.ts";
import { reportOriginOutcome } from "./presence.ts";
import { assertScopedCookieRequest, sandboxScopedResponse, usesScopedCookie } from "./scoped.ts";
import type { AppEnv } from "../types.ts";

export const gateway = new Hono<AppEnv>();

const isUpgrade = (c: Context<AppEnv>) => c.req.header("upgrade")?.toLowerCase() === "websocket";

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
  const origin = c.req.header("origin");
  if (isUpgrade(c) && origin && !result.config.corsOrigins.has(origin)) {
    throw new OutpostError("FORBIDDEN_ORIGIN", "WebSocket connections from this origin are not allowed.");
  }
  // Before authentication, so a planted duplicate cookie or a cross-site request is refused, not resolved.
  if (usesScopedCookie(c)) assertScopedCookieRequest(c, result.config);
  await next();
}

/**
 * Whether an open socket may stay open, checked every 30 s: the device still stands, the account still has a role,
 * and a socket that can write still belongs to someone who may write (a member demoted to viewer loses it).
 * True, or the reason it ends.
 */
export async function socketStillAllowed(env: Env, auth: AuthConfig, identity: Identity, readOnly: boolean): Promise<true | string> {
  const role = roleFor(auth, identity.email, await grantedRoles(env));
  if (!role) return "access removed";
  if (!readOnly && role === "viewer") return "role changed to viewer";
  if (!identity.deviceId) return true;
  const device = await accountStub(env).getDevice(identity.deviceId);
  const ok = !!device && device.revokedAt === null;
  rememberDeviceStatus(auth, identity.deviceId, !ok);
  return ok || "session revoked";
}

gateway.all("*", proxiedOnly, requireAuth({ wsTicket: true, scopedCookie: true }), async (c) => {
  const auth = authConfigOf(c);
  const identity = c.get("identity");
  const config = c.get("config");
  const url = new URL(c.req.url);
  // A WebSocket upgrade is a GET, but what the socket carries afterwards is anything: viewers get read-only sockets,
  // and only where VIEWER_WEBSOCKET_PATHS says the path is meant for them.
  const readOnly = isUpgrade(c) && identity.role === "viewer";
  if (readOnly && !isViewerWebSocketPath(config, url.pathname)) {
    throw new OutpostError("FORBIDDEN", "Viewers cannot open a WebSocket on this path.", { detail: "viewer upgrade outside VIEWER_WEBSOCKET_PATHS" });
  }
  // A ticket is spent at the edge (or refused, off an upgrade); the origin never sees one.
  if (url.searchParams.has("ticket")) url.searchParams.delete("ticket");
  const pathAndQuery = url.pathname + url.search;
  const assertion = await mintAssertion(auth, identity, c.req.method, pathAndQuery);
  const scoped = usesScopedCookie(c);
  const outcome = proxyToOrigin(c, config, {
    pathAndQuery,
    extraHeaders: { [ASSERTION_HEADER]: assertion },
    dropCredentials: true,
    relayWebSocket: (upstream, response) =>
      relayWebSocket(upstream, response, {
        expiresAtMs: identity.exp * 1000,
        readOnly,
        stillValid: () => socketStillAllowed(c.env, auth, identity, readOnly),
      }),
  });
  try {
    const res = await outcome;
    reportOriginOutcome(c.env, c.executionCtx, true);
    return scoped ? sandboxScopedResponse(res) : res;
  } catch (err) {
    // Phones learn the origin went away from real traffic, not only from the hub's 30 s probe.
    if (err instanceof OutpostError && (err.code === "ORIGIN_UNREACHABLE" || err.code === "ORIGIN_TIMEOUT")) {
      reportOriginOutcome(c.env, c.executionCtx, false);
    }
    throw err;
  }
});
