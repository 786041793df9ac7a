// Hashed build files: a missing one is a real 404, never the SPA's index.html cached as immutable.
import { Hono } from "hono";
import { errorBody } from "../../shared/errors.ts";
import type { AppEnv } from "../types.ts";

export const assets = new Hono<AppEnv>();

// With single-page-application handling the assets binding answers any missing file with index.html;
// under /assets/ that would be cached for a year and break the app after the next deploy.
assets.get("/*", async (c) => {
  const res = await c.env.ASSETS.fetch(c.req.raw);
  const path = new URL(c.req.url).pathname;
  if (res.ok && (res.headers.get("content-type") ?? "").startsWith("text/html") && !path.endsWith(".html")) {
    await res.body?.cancel();
    c.header("Cache-Control", "no-store");
    return c.json(errorBody("NOT_FOUND", "No such file.", c.get("requestId")), 404);
  }
  return res;
});
