// The Outpost edge Worker: health, CORS, guards, and the proxy to the origin; the SPA is served from static assets.
import { Hono } from "hono";
import { getConfig, isProxyPath } from "./config.ts";
import { errorBody, errorResponse, OutpostError } from "./errors.ts";
import { edgeCors } from "./middleware/cors.ts";
import { guard } from "./middleware/guard.ts";
import { requestLog } from "./middleware/request-log.ts";
import { proxyToOrigin } from "./proxy/index.ts";
import { health } from "./routes/health.ts";
import type { AppEnv } from "./types.ts";

export const app = new Hono<AppEnv>();

app.use(requestLog());
app.use(guard());
app.use(edgeCors());
app.route("/", health);

app.all("*", async (c, next) => {
  const result = getConfig(c.env);
  if (!result.ok) {
    throw new OutpostError("CONFIG_INVALID", 503, "The gateway is not configured; see /ready.", {
      detail: result.problems.map((p) => p.setting).join(","),
    });
  }
  c.set("config", result.config);
  const path = new URL(c.req.url).pathname;
  if (!isProxyPath(result.config, path)) return next();
  const websocket = c.req.header("upgrade")?.toLowerCase() === "websocket";
  const origin = c.req.header("origin");
  if (websocket && origin && !result.config.corsOrigins.has(origin)) {
    throw new OutpostError("FORBIDDEN_ORIGIN", 403, "WebSocket connections from this origin are not allowed.");
  }
  return proxyToOrigin(c, result.config);
});

app.notFound((c) => c.json(errorBody("NOT_FOUND", "No such route.", c.get("requestId") ?? ""), 404));
app.onError((err, c) => errorResponse(c, err));

export default app satisfies ExportedHandler<Env>;
