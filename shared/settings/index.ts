// Every setting of the Worker and the origin, declared once: the typed configs, the origin's flags, and what the docs are generated from.
import { PROXY_GROUP } from "./edge.ts";
import { IDENTITY_GROUP } from "./identity.ts";
import { PRESENCE_GROUP } from "./presence.ts";
import type { Setting, SettingGroup } from "./types.ts";

export * from "./edge.ts";
export * from "./identity.ts";
export * from "./origin.ts";
export * from "./plain-http.ts";
export * from "./presence.ts";
export * from "./types.ts";

/** The Worker's settings in the order docs/configuration.md and .dev.vars.example list them. */
export const WORKER_GROUPS: readonly SettingGroup[] = [PROXY_GROUP, IDENTITY_GROUP, PRESENCE_GROUP];

export const WORKER_SETTINGS: readonly Setting<unknown>[] = WORKER_GROUPS.flatMap((g) => g.settings);
