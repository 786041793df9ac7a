// The origin's Hono app: /health, the edge's event intake, the built-in agent API and the diagnostic routes tests rely on.
import type { HttpBindings } from "@hono/node-server";
import { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { createHash } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { errorBody, OutpostError } from "../shared/errors.ts";
import { PRIVATE_NO_STORE } from "./http.ts";
import { projects } from "./api/projects.ts";
import { sessions } from "./api/sessions.ts";
import { tasks } from "./api/tasks.ts";
import type { OriginVars } from "./api/validate.ts";
import { edgeEvents } from "./events.ts";
import type { Store } from "./store.ts";
import { OutpostVerifyError, type OutpostIdentity } from "./verify.ts";

export type OriginEnv = { Bindings: HttpBindings; Variables: OriginVars };

/** What the server verified for each request before handing it to the app. */
export interface RequestContext {
  identity: OutpostIdentity;
  requestId: string;
}

// Echo bodies larger than this are summarised by length and digest rather than returned whole.
const ECHO_INLINE_LIMIT = 64 * 1024;

export interface AppOptions {
  store: Store;
  /** The verified identity and request id of an incoming request (set by the server's guard). */
  contextOf: (incoming: IncomingMessage) => RequestContext | undefined;
  /** Serve the built-in API under /api (false when requests are forwarded to --upstream). */
  builtinApi: boolean;
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

  if (options.builtinApi) {
    app.route("/api/projects", projects);
    app.route("/api/sessions", sessions);
    app.route("/api/tasks", tasks);
    app.get("/api/me", (c) => {
      const { sub, email, role } = c.get("identity");
      return c.json({ sub, email, role });
    });
    mountDiagnostics(app);
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

/** Echo, Server-Sent Events and (in ws.ts) a WebSocket echo: what the end-to-end tests check through the edge. */
function mountDiagnostics(app: Hono<OriginEnv>): void {
  app.all("/api/echo/*", async (c) => {
    const url = new URL(c.req.url);
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    const headers: Record<string, string> = {};
    c.req.raw.headers.forEach((value, name) => {
      headers[name] = value;
    });
    return c.json({
      method: c.req.method,
      path: url.pathname,
      query: url.search,
      headers,
      bodyBytes: bytes.byteLength,
      bodySha256: createHash("sha256").update(bytes).digest("hex"),
      body: bytes.byteLength <= ECHO_INLINE_LIMIT ? new TextDecoder().decode(bytes) : null,
    });
  });

  app.get("/api/events", (c) => {
    const count = clampInt(c.req.query("count"), 5, 1, 1000);
    const intervalMs = clampInt(c.req.query("interval"), 200, 0, 10_000);
    return streamSSE(c, async (stream) => {
      for (let i = 1; i <= count && !stream.aborted; i++) {
        await stream.writeSSE({ id: String(i), event: "tick", data: JSON.stringify({ n: i, at: Date.now() }) });
        if (i < count) await stream.sleep(intervalMs);
      }
    });
  });
}

function clampInt(raw: string | undefined, fallback: number, min: number, max: number): number {
  const n = raw === undefined ? fallback : Number.parseInt(raw, 10);
  return Number.isFinite(n) ? Math.min(max, Math.max(min, n)) : fallback;
}
