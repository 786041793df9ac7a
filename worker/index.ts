// The Outpost edge Worker: health, identity, CORS, guards, and the authenticated proxy to the origin.
import { Hono } from "hono";
import { errorBody } from "../shared/errors.ts";
import { PATHS } from "../shared/paths.ts";
import { errorResponse } from "./errors.ts";
import { edgeCors } from "./middleware/cors.ts";
import { guard } from "./middleware/guard.ts";
import { requestLog } from "./middleware/request-log.ts";
import { access } from "./routes/access.ts";
import { assets } from "./routes/assets.ts";
import { authRoutes } from "./routes/auth.ts";
import { devices, enrollLinks } from "./routes/devices.ts";
import { gateway } from "./routes/gateway.ts";
import { health } from "./routes/health.ts";
import { heartbeat, presence } from "./routes/presence.ts";
import { scopedAccess } from "./routes/scoped.ts";
import { wellKnown } from "./routes/well-known.ts";
import type { AppEnv } from "./types.ts";

export const app = new Hono<AppEnv>();

app.use(requestLog());
// CORS first, so a browser can read the body of every refusal that follows.
app.use(edgeCors());
app.use(guard());
app.route("/", health); // /health, /ready
app.route("/.well-known", wellKnown);
app.route("/auth", authRoutes);
app.route(PATHS.scoped, scopedAccess);
// Edge-owned /api routes come before the proxy's catch-all.
app.route(PATHS.devices, devices);
app.route(PATHS.enrollLinks, enrollLinks);
app.route(PATHS.access, access);
app.route(PATHS.heartbeat, heartbeat);
app.route(PATHS.presence, presence);
app.route("/assets", assets);
app.route("/", gateway);

app.notFound((c) => c.json(errorBody("NOT_FOUND", "No such route.", c.get("requestId") ?? ""), 404));
app.onError((err, c) => errorResponse(c, err));

export default app satisfies ExportedHandler<Env>;
export { AccountDO } from "../durable-objects/account/index.ts";
export { PresenceHub } from "../durable-objects/presence/hub.ts";
