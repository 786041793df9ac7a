// The Hono environment shared by every route and middleware of the edge Worker.
import type { Identity } from "./auth/tokens.ts";
import type { Config } from "../shared/settings/index.ts";

interface Vars {
  requestId: string;
  /** Log-only detail of a failure; never sent to clients. */
  errorDetail: string;
  config: Config;
  identity: Identity;
}

export interface AppEnv {
  Bindings: Env;
  Variables: Vars;
}
