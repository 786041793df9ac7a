// The origin's Hono app: /health, the edge's event intake, the built-in agent API, and the routes of any extension.
import type { HttpBindings } from "@hono/node-server";
import { Hono } from "hono";
import type { IncomingMessage } from "node:http";
import { errorBody, OutpostError } from "../shared/errors.ts";
import { PRIVATE_NO_STORE } from "./http.ts";
import { projects } from "./api/projects.ts";
import { sessions } from "./api/sessions.ts";
import { tasks } from "./api/tasks.ts";
import type { OriginVars } from "./api/validate.ts";
import { edgeEvents } from "./events.ts";
import type { Store } from "./store.ts";
import type { SocketRoute } from "./ws.ts";
import { OutpostVerifyError, type OutpostIdentity } from "./verify.ts";

export type OriginEnv = { Bindings: HttpBindings; Variables: OriginVars };

/** What the server verified for each request before handing it to the app. */
export interface RequestContext {
  identity: OutpostIdentity;
  requestId: string;
}

/**
 * What an embedder (or a test) adds to the origin: routes on the app and WebSocket routes, both reached only after the
 * server verified the request's assertion, like the built-in API. `outpost origin` itself adds none.
 */
export interface OriginExtension {
  /** Mounts routes; they see the verified identity as c.get("identity"). */
  routes?(app: Hono<OriginEnv>): void;
  /** WebSocket routes by exact path: each accepted socket with who opened it. */
  sockets?: Readonly<Record<string, SocketRoute>>;
}

export interface AppOptions {
  store: Store;
  /** The verified identity and request id of an incoming request (set by the server's guard). */
  contextOf: (incoming: IncomingMessage) => RequestContext | undefined;
  /** Serve the built-in API under /api (false when requests are forwarded to --upstream). */
  builtinApi: boolean;
  extensions?: readonly OriginExtension[];
}

export function createOriginApp(options: AppOptions) {
  const app = new Hono<OriginEnv>();

  // Every answer is for one user (or a live probe): shared caches, the tunnel zone's above all, must not keep it.
  app.use("*", async (c, next) => {
    await next();
    if (!c.res.headers.has("cache-control") && !c.res.headers.has("expires")) c.res.headers.set("Cache-Control", PRIVATE_NO_STORE);
  });

  app.get("/health", (c) => c.json({ status: "ok", service: "outpost-origin" }));

  // Everything below /health was verified by the server; a request that somehow was not is refused here too.
  app.use("*", async (c, next) => {
    const ctx = options.contextOf(c.env.incoming);
    if (!ctx) throw new OutpostVerifyError("not verified by the server");
    c.set("identity", ctx.identity);
    c.set("requestId", ctx.requestId);
    c.set("store", options.store);
    await next();
  });

  app.route("/", edgeEvents);
  for (const extension of options.extensions ?? []) extension.routes?.(app);

  if (options.builtinApi) {
    app.route("/api/projects", projects);
    app.route("/api/sessions", sessions);
    app.route("/api/tasks", tasks);
    app.get("/api/me", (c) => {
      const { sub, email, role } = c.get("identity");
      return c.json({ sub, email, role });
    });
  }

  app.notFound((c) => c.json(errorBody("NOT_FOUND", "No such route.", c.get("requestId") ?? ""), 404));
  app.onError((err, c) => {
    const requestId = c.get("requestId") ?? "";
    if (err instanceof OutpostError) return c.json(errorBody(err.code, err.message, requestId), err.status, err.headers);
    console.error(JSON.stringify({ msg: "origin error", requestId, path: c.req.path, error: err instanceof Error ? err.message : String(err) }));
    return c.json(errorBody("INTERNAL", "The origin failed to handle this request.", requestId), 500);
  });
  return app;
}
