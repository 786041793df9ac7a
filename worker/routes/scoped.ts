// Scoped access for an origin page in an iframe: a short-lived cookie that opens one path prefix and nothing else.
import { Hono, type Context } from "hono";
import { setCookie } from "hono/cookie";
import { readFields } from "../body.ts";
import { accountStub } from "../../durable-objects/account/index.ts";
import { authConfigOf, requireAuth, SCOPED_COOKIE } from "../auth/middleware.ts";
import { invalidToken, mintOwn, TOKEN_KINDS, verifyOwn } from "../auth/tokens.ts";
import { getConfig, isProxyPath, type Config } from "../../shared/settings/index.ts";
import { SCOPED_SANDBOX } from "../../shared/identity.ts";
import { OutpostError } from "../../shared/errors.ts";
import { requiredString, stringField } from "../../shared/fields.ts";
import type { AppEnv } from "../types.ts";
import { assertSameSiteOrigin, limitByIp } from "../auth/guards.ts";

const CODE_TTL_MS = 60_000;
const PREFIX = /^(\/[A-Za-z0-9._~-]+)+\/?$/;

export const scopedAccess = new Hono<AppEnv>();

scopedAccess.post("/", requireAuth({ selfService: true }), async (c) => {
  const auth = authConfigOf(c);
  const f = await readFields(c, 4096);
  const prefix = requiredString(f, "prefix", 256);
  const config = getConfig(c.env);
  if (!PREFIX.test(prefix) || prefix.split("/").some((s) => s === "." || s === "..")) {
    throw new OutpostError("BAD_REQUEST", '"prefix" must be a path like /api/editor/.');
  }
  if (!config.ok || !isProxyPath(config.config, prefix)) {
    throw new OutpostError("BAD_REQUEST", '"prefix" must be under a proxied path.');
  }
  // A cookie for all of /api/ would open the whole laptop API to whatever page is framed: name one app's path.
  const bare = prefix.replace(/\/$/, "");
  if (config.config.proxyPaths.some((p) => p.endsWith("/") && p.slice(0, -1) === bare)) {
    throw new OutpostError("BAD_REQUEST", `"prefix" must name a path below ${bare}/, not all of it.`);
  }
  const ttlRaw = f.ttl_seconds ?? TOKEN_KINDS.scoped.ttl;
  if (typeof ttlRaw !== "number" || !Number.isInteger(ttlRaw) || ttlRaw < 30 || ttlRaw > TOKEN_KINDS.scoped.ttl) {
    throw new OutpostError("BAD_REQUEST", `"ttl_seconds" must be an integer from 30 to ${TOKEN_KINDS.scoped.ttl}.`);
  }
  const identity = c.get("identity");
  const { token } = await mintOwn(
    auth,
    "scoped",
    {
      sub: identity.sub,
      email: identity.email,
      prefix,
      provider: identity.provider,
      ...(identity.deviceId ? { sid: identity.deviceId } : {}),
    },
    { ttl: ttlRaw },
  );
  const code = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(24)))).replace(/[+/=]/g, (ch) => ({ "+": "-", "/": "_", "=": "" })[ch]!);
  await accountStub(c.env).storeScopedCode(code, token, Date.now() + CODE_TTL_MS);
  c.header("Cache-Control", "no-store");
  return c.json({ url: `${auth.issuer}/auth/scoped/open#code=${code}`, prefix, expires_in: ttlRaw });
});

// A tiny page that reads the one-time code from the fragment and trades it for the cookie, so no
// credential ever appears in a URL a server sees.
scopedAccess.get("/open", (c) => {
  const nonce = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  // A top-level page only: the web app redeems codes for its frame itself, and nothing may frame this one.
  c.header("Content-Security-Policy", `default-src 'none'; script-src 'nonce-${nonce}'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'`);
  c.header("X-Frame-Options", "DENY");
  c.header("Cache-Control", "no-store");
  c.header("Referrer-Policy", "no-referrer");
  return c.html(`<!doctype html><meta charset="utf-8"><title>Opening…</title><p id="m">Opening…</p>
<script nonce="${nonce}">
const code = new URLSearchParams(location.hash.slice(1)).get("code");
history.replaceState(null, "", location.pathname);
fetch("/auth/scoped/redeem", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ code }) })
  .then(async (r) => { const b = await r.json(); if (!r.ok) throw new Error(b.error.message); location.replace(b.location); })
  .catch((e) => { document.getElementById("m").textContent = "This link cannot be opened: " + e.message; });
</script>`);
});

scopedAccess.post("/redeem", async (c) => {
  const auth = authConfigOf(c);
  assertSameSiteOrigin(c);
  await limitByIp(c, "scoped");
  const f = await readFields(c, 4096);
  const code = stringField(f, "code", 64);
  const token = code ? await accountStub(c.env).redeemScopedCode(code) : null;
  if (!token) throw invalidToken("unknown or used scoped code");
  const payload = await verifyOwn(auth, token, "scoped");
  const prefix = payload.prefix as string;
  // The path is the prefix, so no __Host- prefix (it needs Path=/): duplicates are refused instead (usesScopedCookie).
  // SameSite=None because the page runs sandboxed in an opaque origin, whose requests are all cross-site; the
  // gateway refuses the cross-site requests a browser can tell apart (assertScopedCookieRequest).
  setCookie(c, SCOPED_COOKIE, token, {
    path: prefix.endsWith("/") ? prefix.slice(0, -1) || "/" : prefix,
    httpOnly: true,
    secure: true,
    sameSite: "None",
    maxAge: (payload.exp as number) - Math.floor(Date.now() / 1000),
  });
  c.header("Cache-Control", "no-store");
  return c.json({ location: prefix });
});

/** How many cookies of this exact name a request carries, over every Cookie header. */
function cookieCount(c: Context, name: string): number {
  const header = c.req.raw.headers.get("cookie") ?? "";
  // Several Cookie headers arrive joined by ", "; cookie values cannot contain "," or ";" (RFC 6265 §4.1.1).
  return header.split(/[;,]/).filter((pair) => pair.split("=", 1)[0]!.trim() === name).length;
}

/** Whether the scoped cookie is this request's credential: requireAuth tries a bearer token and a ticket first. */
export function usesScopedCookie(c: Context): boolean {
  if (c.req.raw.headers.has("authorization")) return false;
  const upgrade = c.req.header("upgrade")?.toLowerCase() === "websocket";
  if (upgrade && new URL(c.req.url).searchParams.get("ticket")) return false;
  return cookieCount(c, SCOPED_COOKIE) > 0;
}

/**
 * Refuses what a scoped cookie must not open: two of them (a sibling host can plant a second one for the same path,
 * and "first wins" would pick between them blindly), and requests another site started: a foreign Origin, or a
 * cross-site top-level navigation (the frame's own requests come from an opaque origin: `Origin: null` or none).
 */
export function assertScopedCookieRequest(c: Context, config: Config): void {
  if (cookieCount(c, SCOPED_COOKIE) > 1) throw invalidToken("duplicate scoped cookies");
  const origin = c.req.header("origin");
  if (origin && origin !== "null" && origin !== new URL(c.req.url).origin && !config.corsOrigins.has(origin)) {
    throw new OutpostError("FORBIDDEN_ORIGIN", "Scoped access only answers the page it opened.", { detail: "scoped cookie from a foreign Origin" });
  }
  const site = c.req.header("sec-fetch-site");
  if (c.req.header("sec-fetch-dest") === "document" && (site === "cross-site" || site === "same-site")) {
    throw new OutpostError("FORBIDDEN_ORIGIN", "Scoped access only answers the page it opened.", { detail: "scoped cookie on a cross-site navigation" });
  }
}

/**
 * A response the scoped cookie opened runs sandboxed wherever it is shown (the web app's frame, a new tab, the address
 * bar) and can be framed only by the web app.
 */
export function sandboxScopedResponse(res: Response): Response {
  if (res.status === 101 || res.webSocket) return res;
  res.headers.append("Content-Security-Policy", `sandbox ${SCOPED_SANDBOX}; frame-ancestors 'self'`);
  return res;
}
