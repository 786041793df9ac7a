// Scoped access for an origin page in an iframe: a short-lived cookie that opens one path prefix and nothing else.
import { Hono } from "hono";
import { setCookie } from "hono/cookie";
import { readFields } from "../body.ts";
import { accountStub } from "../../durable-objects/account/index.ts";
import { authConfigOf, requireAuth, SCOPED_COOKIE } from "../auth/middleware.ts";
import { invalidToken, mintOwn, TOKEN_KINDS, verifyOwn } from "../auth/tokens.ts";
import { getConfig, isProxyPath } from "../../shared/settings/index.ts";
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
  c.header("Content-Security-Policy", `default-src 'none'; script-src 'nonce-${nonce}'; connect-src 'self'`);
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
  setCookie(c, SCOPED_COOKIE, token, {
    path: prefix.endsWith("/") ? prefix.slice(0, -1) || "/" : prefix,
    httpOnly: true,
    secure: true,
    sameSite: "Strict",
    maxAge: (payload.exp as number) - Math.floor(Date.now() / 1000),
  });
  c.header("Cache-Control", "no-store");
  return c.json({ location: prefix });
});
