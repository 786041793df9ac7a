// The origin's HTTP server: every request but /health proves it came through the edge, then reaches the built-in API or --upstream.
import { getRequestListener } from "@hono/node-server";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { LOCAL_HOST, ORIGIN_OPTIONS, ORIGIN_PORT } from "../shared/settings/index.ts";
import { createOriginApp, type OriginExtension, type RequestContext } from "./app.ts";
import { createForwarder, type Forwarder } from "./forward.ts";
import { pathOf, rejectUpgrade, requestIdOf, sendError } from "./http.ts";
import { ASSERTION_HEADER } from "../shared/assertion.ts";
import { OutpostError } from "../shared/errors.ts";
import { databaseFile, Store } from "./store.ts";
import { createOutpostVerifier, OutpostVerifyError, type OutpostVerifier } from "./verify.ts";
import { createBuiltinSockets } from "./ws.ts";

export interface OriginOptions {
  port?: number;
  host?: string;
  /** The user's own app, e.g. http://localhost:3000: everything but /health and /outpost/* is forwarded there. */
  upstream?: string | null;
  /** The edge's URL: the assertions' issuer and where its /.well-known/jwks.json is fetched. */
  edge?: string | null;
  /** The issuer, when it is not the edge URL's origin (the edge's PUBLIC_URL). */
  issuer?: string | null;
  /** The edge's public keys, instead of fetching them from the edge. */
  jwks?: { keys: unknown[] } | null;
  /** This origin's audience (the edge's ORIGIN_AUDIENCE); "origin" by default. */
  audience?: string | null;
  /** Where origin.db lives (default ./.outpost); ":memory:" keeps nothing. */
  dataDir?: string;
  /** A ready-made verifier (tests, embedding); replaces edge/issuer/jwks/audience. */
  verifier?: OutpostVerifier;
  /** Where refusals are logged (one JSON line each); default stderr. */
  log?: (line: string) => void;
  /** Extra routes and WebSocket routes, verified like the built-in API (embedding, tests); `outpost origin` adds none. */
  extensions?: readonly OriginExtension[];
  /** How long a client may take to send a request's headers before the connection is closed; default HEADERS_TIMEOUT_MS. */
  headersTimeoutMs?: number;
}

export interface RunningOrigin {
  url: string;
  port: number;
  store: Store;
  close(): Promise<void>;
}

const DEFAULT_DATA_DIR = ORIGIN_OPTIONS.dataDir.default;
/**
 * cloudflared sends a request's headers at once, so a client still sending them after this long is holding a
 * connection open on purpose (slowloris). Bodies have no such limit: uploads and streams may take as long as they need.
 */
const HEADERS_TIMEOUT_MS = 10_000;
const failed = () => new OutpostError("INTERNAL", "The origin failed to handle this request.");

/** Without a key source nothing can be verified: every request but /health is refused (fails closed). */
function verifierFor(options: OriginOptions): OutpostVerifier {
  if (options.verifier) return options.verifier;
  if (!options.edge && !options.jwks) {
    return async () => {
      throw new OutpostVerifyError("no edge configured (--edge or --jwks)");
    };
  }
  return createOutpostVerifier({
    edgeUrl: options.edge ?? undefined,
    issuer: options.issuer ?? undefined,
    jwks: options.jwks ?? undefined,
    audience: options.audience ?? undefined,
  });
}

export async function startOrigin(options: OriginOptions = {}): Promise<RunningOrigin> {
  const verify = verifierFor(options);
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const store = new Store(databaseFile(options.dataDir ?? DEFAULT_DATA_DIR));
  const forwarder: Forwarder | null = options.upstream ? createForwarder(options.upstream) : null;
  const extensions = options.extensions ?? [];
  const sockets = createBuiltinSockets(forwarder ? null : store, Object.assign({}, ...extensions.map((e) => e.sockets ?? {})));
  const contexts = new WeakMap<IncomingMessage, RequestContext>();
  const app = createOriginApp({ store, contextOf: (incoming) => contexts.get(incoming), builtinApi: !forwarder, extensions });
  const handle = getRequestListener(app.fetch);

  /** Verifies the request's assertion; the refusal (after logging why) when it must be refused. */
  async function guard(req: IncomingMessage, requestId: string): Promise<RequestContext | OutpostVerifyError> {
    try {
      const assertion = req.headers[ASSERTION_HEADER];
      const identity = await verify({ method: req.method ?? "", pathAndQuery: req.url ?? "", assertion: Array.isArray(assertion) ? undefined : assertion });
      return { identity, requestId };
    } catch (err) {
      const refused = err instanceof OutpostVerifyError ? err : new OutpostVerifyError(String(err), err);
      log(JSON.stringify({ msg: "origin refused", method: req.method, path: pathOf(req.url), requestId, reason: refused.reason }));
      return refused;
    }
  }

  const headersTimeout = options.headersTimeoutMs ?? HEADERS_TIMEOUT_MS;
  // requestTimeout 0: a whole request (an upload) may take as long as it needs; only its headers are timed.
  // Node checks the timeout every connectionsCheckingInterval (30 s by default): often enough to hold it.
  const serverOptions = { noDelay: true, requestTimeout: 0, headersTimeout, connectionsCheckingInterval: Math.max(10, Math.min(1000, headersTimeout / 4)) };
  const server = createServer(serverOptions, async (req, res) => {
    const path = pathOf(req.url);
    if (path === "/health") return void handle(req, res);
    const requestId = requestIdOf(req);
    const ctx = await guard(req, requestId);
    if (ctx instanceof OutpostError) {
      // Nothing of a refused request is read or forwarded; the connection closes so its body is not waited for.
      res.shouldKeepAlive = false;
      return sendError(res, ctx, requestId, { connection: "close" });
    }
    try {
      if (forwarder && !path.startsWith("/outpost/")) return forwarder.http(req, res, ctx.identity, requestId);
      contexts.set(req, ctx);
      void handle(req, res);
    } catch (err) {
      log(JSON.stringify({ msg: "origin error", path, requestId, error: err instanceof Error ? err.message : String(err) }));
      sendError(res, failed(), requestId);
    }
  });

  server.on("upgrade", async (req: IncomingMessage, socket, head: Buffer) => {
    socket.on("error", () => socket.destroy());
    const requestId = requestIdOf(req);
    const ctx = await guard(req, requestId);
    if (ctx instanceof OutpostError) return rejectUpgrade(socket, ctx, requestId);
    const path = pathOf(req.url);
    try {
      if (forwarder && !path.startsWith("/outpost/")) forwarder.upgrade(req, socket, head, ctx.identity, requestId);
      else sockets.upgrade(req, socket, head, ctx.identity, requestId);
    } catch (err) {
      log(JSON.stringify({ msg: "origin error", path, requestId, error: err instanceof Error ? err.message : String(err) }));
      rejectUpgrade(socket, failed(), requestId);
    }
  });
  server.on("clientError", (err: NodeJS.ErrnoException, socket) => {
    const status = err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? "408 Request Timeout" : "400 Bad Request";
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`);
    socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) => {
      store.close();
      reject(err);
    });
    server.listen(options.port ?? ORIGIN_PORT, options.host ?? LOCAL_HOST, () => resolve());
  });
  const { port, address } = server.address() as AddressInfo;
  const host = address.includes(":") ? `[${address}]` : address;
  let closing: Promise<void> | null = null;
  return {
    url: `http://${host}:${port}`,
    port,
    store,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        sockets.close();
        forwarder?.close();
        server.closeAllConnections();
        server.close(() => {
          store.close();
          resolve();
        });
      })),
  };
}
