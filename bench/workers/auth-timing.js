// BENCH ONLY, never deployed: times the gateway's identity work inside workerd, N iterations per request.
//   GET /?op=<op>&n=<N>  with Authorization: Bearer <owner access token>
// ops: "verify"  verifyUserToken (an uncached check: ES256 signature + claims; the key is imported once per isolate)
//      "cached"  tokenKey (SHA-256 of the token) + cachedIdentity: what every request after the first pays
//      "assert"  mintAssertion (the ES256-signed assertion the gateway adds to every proxied request)
//      "none"    an empty loop, for the fixed cost of a call
// workerd's clocks do not advance while JavaScript runs (they move only at I/O, a Spectre mitigation), so the loop is
// fenced by two zero-delay timers, which are I/O; the caller also times the whole request and workerd's CPU.
import { getAuthConfig } from "../../shared/settings/index.ts";
import { mintAssertion } from "../../worker/auth/assertion.ts";
import { cachedIdentity, rememberIdentity, tokenKey } from "../../worker/auth/identity-cache.ts";
import { verifyUserToken } from "../../worker/auth/tokens.ts";

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const op = url.searchParams.get("op") ?? "none";
    const n = Math.max(1, Math.min(1_000_000, Number(url.searchParams.get("n") ?? "1")));
    const token = (request.headers.get("authorization") ?? "").replace(/^Bearer /, "");
    const result = getAuthConfig(env);
    if (!result.ok) return Response.json({ error: "config", problems: result.problems }, { status: 500 });
    const auth = result.auth;
    // Warm: key import, config parse, and a cache entry for "cached".
    const identity = await verifyUserToken(auth, token);
    rememberIdentity(auth, await tokenKey(token), identity);
    await tick();
    const t0 = performance.now();
    let sink = 0;
    if (op === "verify") {
      for (let i = 0; i < n; i++) sink += (await verifyUserToken(auth, token)).exp;
    } else if (op === "cached") {
      for (let i = 0; i < n; i++) sink += cachedIdentity(auth, await tokenKey(token))?.exp ?? 0;
    } else if (op === "assert") {
      for (let i = 0; i < n; i++) sink += (await mintAssertion(auth, identity, "GET", `/api/echo/bench?i=${i}`)).length;
    } else if (op !== "none") {
      return Response.json({ error: `unknown op ${op}` }, { status: 400 });
    }
    await tick();
    const t1 = performance.now();
    return Response.json({ op, n, elapsedMs: t1 - t0, sink });
  },
};
