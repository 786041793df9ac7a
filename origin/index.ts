// The package entry ("outpost/origin"): verify the edge's assertion in your own app, as Hono or Express/node:http middleware.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { MiddlewareHandler } from "hono";
import { ASSERTION_HEADER } from "../shared/assertion.ts";
import { errorBody } from "../shared/errors.ts";
import { createOutpostVerifier, OutpostVerifyError, type OutpostIdentity, type OutpostVerifier, type VerifyOptions } from "./verify.ts";

export { ASSERTION_HEADER, ASSERTION_TYP } from "../shared/assertion.ts";
export { parseJwks, type KeySource, type PublicJwk } from "./keys.ts";
export { createOutpostVerifier, OutpostVerifyError } from "./verify.ts";
export type { OutpostIdentity, OutpostVerifier, RequestFacts, VerifyOptions } from "./verify.ts";

const byKey = new Map<string, OutpostVerifier>();
const byKeys = new WeakMap<object, OutpostVerifier>();

/**
 * One verifier per configuration, kept for the life of the process: its JWKS cache and replay cache must outlive a
 * request, so options written inline on every call still share them.
 */
function verifierFor(options: VerifyOptions | OutpostVerifier): OutpostVerifier {
  if (typeof options === "function") return options;
  if (options.keys) {
    let v = byKeys.get(options.keys);
    if (!v) byKeys.set(options.keys, (v = createOutpostVerifier(options)));
    return v;
  }
  const key = JSON.stringify([
    options.edgeUrl,
    options.issuer,
    options.audience,
    options.jwksUrl,
    options.jwks,
    options.clockToleranceSeconds,
    options.jwksCooldownMs,
  ]);
  let v = byKey.get(key);
  if (!v) byKey.set(key, (v = createOutpostVerifier(options)));
  return v;
}

function isFetchRequest(req: Request | IncomingMessage): req is Request {
  return typeof (req as Request).headers?.get === "function";
}

/** Path and query as the client sent them; behind Express mounts `originalUrl` keeps the full target. */
function targetOf(req: Request | IncomingMessage): string {
  if (isFetchRequest(req)) {
    const url = new URL(req.url);
    return url.pathname + url.search;
  }
  return (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? "/";
}

/**
 * Checks the request's Outpost-Assertion: ES256 signature from the edge's JWKS, typ, iss, aud, a lifetime of at most
 * 60 s, bound to this method and path+query, never used before. Resolves with who the edge verified; throws
 * OutpostVerifyError (status 401) otherwise, including when the JWKS cannot be fetched.
 */
export function verifyOutpostRequest(req: Request | IncomingMessage, options: VerifyOptions | OutpostVerifier): Promise<OutpostIdentity> {
  const header = isFetchRequest(req) ? req.headers.get(ASSERTION_HEADER) : req.headers[ASSERTION_HEADER];
  return verifierFor(options)({ method: req.method ?? "", pathAndQuery: targetOf(req), assertion: Array.isArray(header) ? undefined : header });
}

function refusal(err: OutpostVerifyError, requestId: string | undefined) {
  return errorBody(err.code, err.message, requestId ?? "");
}

/** Hono middleware: refuses with 401 JSON, else sets c.get("outpost") to the verified identity. */
export function outpostHono(options: VerifyOptions | OutpostVerifier): MiddlewareHandler<{ Variables: { outpost: OutpostIdentity } }> {
  const verify = verifierFor(options);
  return async (c, next) => {
    // On @hono/node-server the raw request target is at hand; elsewhere the URL's path and query.
    const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
    let identity: OutpostIdentity;
    try {
      identity = await verify({ method: c.req.method, pathAndQuery: incoming?.url ?? targetOf(c.req.raw), assertion: c.req.header(ASSERTION_HEADER) });
    } catch (err) {
      if (!(err instanceof OutpostVerifyError)) throw err;
      return c.json(refusal(err, c.req.header("x-request-id")), err.status);
    }
    c.set("outpost", identity);
    await next();
  };
}

export type OutpostRequest = IncomingMessage & { outpost?: OutpostIdentity };

/**
 * Express/Connect middleware, also usable with plain node:http as `mw(req, res, () => handle(req, res))`:
 * refuses with 401 JSON, else sets req.outpost to the verified identity and calls next().
 */
export function outpostMiddleware(options: VerifyOptions | OutpostVerifier) {
  const verify = verifierFor(options);
  return (req: OutpostRequest, res: ServerResponse, next: (err?: unknown) => void): void => {
    const header = req.headers[ASSERTION_HEADER];
    verify({ method: req.method ?? "", pathAndQuery: targetOf(req), assertion: Array.isArray(header) ? undefined : header }).then(
      (identity) => {
        req.outpost = identity;
        next();
      },
      (err: unknown) => {
        if (!(err instanceof OutpostVerifyError)) return next(err);
        const requestId = req.headers["x-request-id"];
        const body = JSON.stringify(refusal(err, typeof requestId === "string" ? requestId : undefined));
        res.writeHead(err.status, {
          "content-type": "application/json; charset=utf-8",
          "content-length": Buffer.byteLength(body),
          "cache-control": "no-store",
        });
        res.end(body);
      },
    );
  };
}
