// BENCH ONLY, never deployed: the Outpost Worker unchanged, plus GET /__bench/hub-stats, which returns the presence
// hub's stats() (rows written, alarm sets, heartbeats...). The hub is otherwise reachable only through the Worker.
import app from "../../worker/index.ts";

export { AccountDO, PresenceHub } from "../../worker/index.ts";

export default {
  async fetch(request, env, ctx) {
    if (new URL(request.url).pathname === "/__bench/hub-stats") {
      return Response.json(await env.PRESENCE.getByName("origin").stats());
    }
    return app.fetch(request, env, ctx);
  },
};
