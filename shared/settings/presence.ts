// The presence settings (heartbeat TTL and the interval clients are told to use), declared once and parsed per env object.
import { int, perEnv, setting, SettingsReader, type ConfigProblem, type SettingGroup } from "./types.ts";

export interface PresenceConfig {
  ttlSeconds: number;
  intervalSeconds: number;
}

export type PresenceConfigResult = { ok: true; presence: PresenceConfig } | { ok: false; problems: ConfigProblem[] };

const DEFAULT_TTL_SECONDS = 15;
const DEFAULT_INTERVAL_SECONDS = 10;
/**
 * The hub keeps last-seen times in memory, and an idle Durable Object that cannot hibernate is evicted after
 * 70 to 140 s: a TTL above 60 s could lose a live agent's last heartbeat before its expiry is checked.
 */
const MAX_TTL_SECONDS = 60;

const HEARTBEAT_TTL_SECONDS = setting({
  name: "HEARTBEAT_TTL_SECONDS",
  type: int(2, MAX_TTL_SECONDS),
  default: String(DEFAULT_TTL_SECONDS),
  description:
    "A session is alive this long after its last heartbeat, in seconds; then it expires (`failed`, reason `agent_disconnected`). At most 60: the hub keeps last-seen times in memory, and an idle object is evicted after 70–140 s.",
});

const HEARTBEAT_INTERVAL_SECONDS = setting({
  name: "HEARTBEAT_INTERVAL_SECONDS",
  type: int(1, MAX_TTL_SECONDS - 1),
  default: String(DEFAULT_INTERVAL_SECONDS),
  description: "The interval, in seconds, the edge tells clients to beat at; less than `HEARTBEAT_TTL_SECONDS`.",
});

export const PRESENCE_GROUP: SettingGroup = {
  title: "Presence",
  intro: "Which agent sessions count as alive.",
  settings: [HEARTBEAT_TTL_SECONDS, HEARTBEAT_INTERVAL_SECONDS],
};

export function parsePresenceConfig(env: object): PresenceConfigResult {
  const settings = new SettingsReader(env);
  const ttlSeconds = settings.read(HEARTBEAT_TTL_SECONDS);
  const intervalSeconds = settings.read(HEARTBEAT_INTERVAL_SECONDS);
  if (settings.problems.length === 0 && intervalSeconds >= ttlSeconds) {
    // A client beating exactly at the TTL would flap between alive and expired on every bit of network jitter.
    settings.problem(HEARTBEAT_INTERVAL_SECONDS.name, `must be less than ${HEARTBEAT_TTL_SECONDS.name}`);
  }
  if (settings.problems.length > 0) return { ok: false, problems: settings.problems };
  return { ok: true, presence: { ttlSeconds, intervalSeconds } };
}

export const getPresenceConfig: (env: object) => PresenceConfigResult = perEnv(parsePresenceConfig);

/** The presence part of /ready: the problems name settings, never their values. */
export function presenceCheck(env: object): { ok: boolean; problems?: string[] } {
  const result = getPresenceConfig(env);
  return result.ok ? { ok: true } : { ok: false, problems: result.problems.map((p) => `${p.setting} ${p.reason}`) };
}

/** What the hub runs with: the configured values, or the defaults while /ready reports the settings as broken. */
export function presenceSettings(env: object): PresenceConfig {
  const result = getPresenceConfig(env);
  return result.ok ? result.presence : { ttlSeconds: DEFAULT_TTL_SECONDS, intervalSeconds: DEFAULT_INTERVAL_SECONDS };
}
