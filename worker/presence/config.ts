// The presence settings (heartbeat TTL and the interval clients are told to use), parsed once per env object.
import type { ConfigProblem } from "../config.ts";

export interface PresenceConfig {
  ttlSeconds: number;
  intervalSeconds: number;
}

export type PresenceConfigResult = { ok: true; presence: PresenceConfig } | { ok: false; problems: ConfigProblem[] };

export const DEFAULT_TTL_SECONDS = 15;
export const DEFAULT_INTERVAL_SECONDS = 10;
/**
 * The hub keeps last-seen times in memory, and an idle Durable Object that cannot hibernate is evicted after
 * 70 to 140 s: a TTL above 60 s could lose a live agent's last heartbeat before its expiry is checked.
 */
export const MAX_TTL_SECONDS = 60;

const cache = new WeakMap<object, PresenceConfigResult>();

export function getPresenceConfig(env: object): PresenceConfigResult {
  let result = cache.get(env);
  if (!result) {
    result = parsePresenceConfig(env as Partial<Record<string, unknown>>);
    cache.set(env, result);
  }
  return result;
}

export function parsePresenceConfig(env: Partial<Record<string, unknown>>): PresenceConfigResult {
  const problems: ConfigProblem[] = [];
  const int = (name: string, fallback: number, min: number, max: number): number | null => {
    const raw = typeof env[name] === "string" ? (env[name] as string).trim() : "";
    if (!raw) return fallback;
    const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      problems.push({ setting: name, reason: `must be an integer from ${min} to ${max}` });
      return null;
    }
    return n;
  };
  const ttlSeconds = int("HEARTBEAT_TTL_SECONDS", DEFAULT_TTL_SECONDS, 2, MAX_TTL_SECONDS);
  const intervalSeconds = int("HEARTBEAT_INTERVAL_SECONDS", DEFAULT_INTERVAL_SECONDS, 1, MAX_TTL_SECONDS - 1);
  if (ttlSeconds !== null && intervalSeconds !== null && intervalSeconds >= ttlSeconds) {
    // A client beating exactly at the TTL would flap between alive and expired on every bit of network jitter.
    problems.push({ setting: "HEARTBEAT_INTERVAL_SECONDS", reason: "must be less than HEARTBEAT_TTL_SECONDS" });
  }
  if (problems.length > 0 || ttlSeconds === null || intervalSeconds === null) return { ok: false, problems };
  return { ok: true, presence: { ttlSeconds, intervalSeconds } };
}

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
