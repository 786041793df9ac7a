// A test-local stand-in origin on loopback that records exactly what reaches it, and can hang or stall on purpose.
import { createRemoteJWKSet, decodeJwt, jwtVerify, type JWTPayload } from "jose";
import { createHash } from "node:crypto";
import http from "node:http";
import type { AddressInfo, Server, Socket } from "node:net";
import { TEST_VARS } from "./stack.ts";

export interface ReceivedRequest {
  method: string;
  /** The request target exactly as it arrived on the wire. */
  target: string;
  headers: http.IncomingHttpHeaders;
  /** Body bytes received so far; it grows while a body streams in. */
  bodyBytes: number;
  /** Whether the whole body arrived. */
  complete: boolean;
}

/** What the edge asserts to the origin about a proxied request. */
export interface AssertionClaims extends JWTPayload {
  sub: string;
  email: string;
  role: string;
  htm: string;
  htu: string;
}

export interface ExpectedAssertion {
  method: string;
  /** Path and query exactly as the origin received them. */
  target: string;
  /** Default: the test stacks' PUBLIC_URL origin. */
  issuer?: string;
  /** Default: "origin" (ORIGIN_AUDIENCE in the test stacks). */
  audience?: string;
}

const jwksByEdge = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

/**
 * Checks an Outpost-Assertion header value as an origin must: ES256 against the edge's published JWKS, typ
 * outpost-assertion+jwt, issuer, audience, a lifetime of at most 60 s, a jti, and bound to this method and path+query.
 * Resolves with the claims; rejects with the reason otherwise.
 */
export async function verifyAssertion(edgeUrl: string, assertion: string | string[] | null | undefined, expected: ExpectedAssertion): Promise<AssertionClaims> {
  if (typeof assertion !== "string" || assertion === "") throw new Error(`no single Outpost-Assertion: ${JSON.stringify(assertion)}`);
  let jwks = jwksByEdge.get(edgeUrl);
  if (!jwks) {
    jwks = createRemoteJWKSet(new URL("/.well-known/jwks.json", edgeUrl));
    jwksByEdge.set(edgeUrl, jwks);
  }
  const { payload } = await jwtVerify(assertion, jwks, {
    algorithms: ["ES256"],
    typ: "outpost-assertion+jwt",
    issuer: expected.issuer ?? new URL(TEST_VARS.PUBLIC_URL!).origin,
    audience: expected.audience ?? "origin",
    requiredClaims: ["exp", "iat", "jti", "sub", "htm", "htu"],
  });
  const lifetime = (payload.exp as number) - (payload.iat as number);
  if (lifetime > 60) throw new Error(`assertion lives ${lifetime} s`);
  if (payload.htm !== expected.method) throw new Error(`assertion bound to method ${String(payload.htm)}, not ${expected.method}`);
  if (payload.htu !== expected.target) throw new Error(`assertion bound to ${String(payload.htu)}, not ${expected.target}`);
  return payload as AssertionClaims;
}

/** Where the edge's presence hub posts its own signed event batches (durable-objects/presence/outbox.ts). */
const EDGE_EVENTS_PATH = "/outpost/events";

/**
 * True for a batch the edge itself sent (not a proxied client request): POST /outpost/events with an assertion for the
 * edge's own subject and role. Client requests are asserted for a user, so they can never look like this; the claims
 * are only read here, not verified (verifyAssertion does that).
 */
function isEdgeEvent(req: http.IncomingMessage): boolean {
  const assertion = req.headers["outpost-assertion"];
  if (req.method !== "POST" || req.url !== EDGE_EVENTS_PATH || typeof assertion !== "string") return false;
  try {
    const claims = decodeJwt(assertion);
    return claims.sub === "outpost-edge" && claims.role === "system";
  } catch {
    return false;
  }
}

export interface Upstream {
  url: string;
  /** Requests proxied for clients, in arrival order (the edge's own event batches are in `edgeEvents`). */
  requests: ReceivedRequest[];
  /** Event batches the edge's presence hub posted on its own (e.g. "origin online" after the first proxied request). */
  edgeEvents: ReceivedRequest[];
  /** TCP connections accepted since the last reset, except those that only carried the edge's own event batches. */
  connections(): number;
  /** Body bytes received over all requests. */
  totalBodyBytes(): number;
  reset(): void;
  close(): Promise<void>;
}

/**
 * Routes by path:
 * - `.../hang...`: reads the request, never answers (no status line, no headers).
 * - `.../slow-body?count=N&interval=MS`: sends headers at once, then one line every MS milliseconds.
 * - `.../status/NNN`: answers status NNN with a short text body.
 * - anything else: reads the whole body, then answers 200 JSON {method, target, bodyBytes, bodySha256}; that includes
 *   the edge's own event batches (POST /outpost/events), which are recorded apart, in `edgeEvents`.
 */
export async function startUpstream(): Promise<Upstream> {
  const requests: ReceivedRequest[] = [];
  const edgeEvents: ReceivedRequest[] = [];
  /** Every connection since the last reset, and what came over it so far. */
  const sockets = new Map<Socket, "nothing yet" | "client" | "edge only">();
  const server = http.createServer((req, res) => {
    const record: ReceivedRequest = {
      method: req.method ?? "",
      target: req.url ?? "",
      headers: req.headers,
      bodyBytes: 0,
      complete: false,
    };
    const edge = isEdgeEvent(req);
    (edge ? edgeEvents : requests).push(record);
    if (sockets.has(req.socket) && sockets.get(req.socket) !== "client") sockets.set(req.socket, edge ? "edge only" : "client");
    const hash = createHash("sha256");
    req.on("data", (chunk: Buffer) => {
      record.bodyBytes += chunk.byteLength;
      hash.update(chunk);
    });
    req.on("error", () => {});
    const url = new URL(record.target, "http://upstream.invalid");
    if (url.pathname.includes("/hang")) return;
    const status = /\/status\/(\d{3})$/.exec(url.pathname)?.[1];
    if (status) {
      res.writeHead(Number(status), { "content-type": "text/plain" });
      res.end(`status ${status} from upstream`);
      return;
    }
    if (url.pathname.includes("/slow-body")) {
      const count = Number(url.searchParams.get("count") ?? "3");
      const interval = Number(url.searchParams.get("interval") ?? "500");
      res.writeHead(200, { "content-type": "text/plain", "cache-control": "no-store" });
      res.flushHeaders();
      let sent = 0;
      const tick = () => {
        sent += 1;
        res.write(`line ${sent}\n`);
        if (sent >= count) res.end();
        else setTimeout(tick, interval);
      };
      setTimeout(tick, interval);
      return;
    }
    req.on("end", () => {
      record.complete = true;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          method: record.method,
          target: record.target,
          bodyBytes: record.bodyBytes,
          bodySha256: hash.digest("hex"),
        }),
      );
    });
  });
  server.on("connection", (socket: Socket) => void sockets.set(socket, "nothing yet"));
  const url = await listen(server);
  return {
    url,
    requests,
    edgeEvents,
    connections: () => [...sockets.values()].filter((seen) => seen !== "edge only").length,
    totalBodyBytes: () => requests.reduce((sum, r) => sum + r.bodyBytes, 0),
    reset: () => {
      requests.splice(0);
      edgeEvents.splice(0);
      sockets.clear();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      resolve(`http://127.0.0.1:${port}`);
    });
  });
}
