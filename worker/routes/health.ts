// Liveness (/health, never touches the origin) and readiness (/ready, checks config and the origin).
import { Hono } from "hono";
import { version } from "../../package.json";
import { getAuthConfig, getConfig, presenceCheck } from "../../shared/settings/index.ts";
import type { AppEnv } from "../types.ts";

let startedAt = 0;

import type { HealthReport, ReadyCheck, ReadyReport } from "../../shared/api-types.ts";
import { PATHS } from "../../shared/paths.ts";

export const health = new Hono<AppEnv>();

health.get(PATHS.health, (c) => {
  // Date.now() is frozen at 0 outside a request in workerd, so the clock starts at the first request.
  if (startedAt === 0) startedAt = Date.now();
  const config = getConfig(c.env);
  c.header("Cache-Control", "no-store");
  return c.json({
    status: "ok",
    version,
    uptime: Math.floor((Date.now() - startedAt) / 1000),
    services: { edge: "ok", config: config.ok ? "ok" : "invalid" },
  } satisfies HealthReport);
});

health.get(PATHS.ready, async (c) => {
  const result = getConfig(c.env);
  const checks: Record<string, ReadyCheck> = {};
  if (!result.ok) {
    checks.config = { ok: false, problems: result.problems.map((p) => `${p.setting} ${p.reason}`) };
    checks.origin = { ok: false, problems: ["not checked: configuration is invalid"] };
  } else {
    checks.config = { ok: true };
    checks.origin = await cachedOriginCheck(result.config.originUrl, result.config.readyTimeoutMs);
  }
  checks.auth = authCheck(c.env);
  checks.presence = presenceCheck(c.env);
  const ready = Object.values(checks).every((check) => check.ok);
  c.header("Cache-Control", "no-store");
  return c.json({ ready, checks } satisfies ReadyReport, ready ? 200 : 503);
});

function authCheck(env: Env): ReadyCheck {
  const auth = getAuthConfig(env);
  if (!auth.ok) return { ok: false, problems: auth.problems.map((p) => `${p.setting} ${p.reason}`) };
  // Without an owner nobody could approve a login or manage devices: refuse everything rather than guess.
  if (!auth.auth.hasOwner) return { ok: false, problems: ["OWNER_EMAILS names no owner: every /api request is refused"] };
  return { ok: true };
}

/**
 * /ready is public, so each call must not cost the origin a request: a passing check is reused for 5 s per isolate.
 * A failing one only for 1 s, so a monitor sees the origin come back at once; still a flood of /ready while the origin
 * is down or slow (each check then waits up to READY_TIMEOUT_MS) costs it at most one request a second per isolate.
 * Results are kept, not the check in flight: workerd does not let one request wait on another's I/O.
 */
const ORIGIN_OK_TTL_MS = 5_000;
const ORIGIN_FAILED_TTL_MS = 1_000;
/** One origin per deployment; the bound is for test runs that point one isolate at many. */
const MAX_CACHED_ORIGINS = 16;
const originChecks = new Map<string, { check: ReadyCheck; until: number }>();

async function cachedOriginCheck(originUrl: URL, timeoutMs: number): Promise<ReadyCheck> {
  const key = `${originUrl.origin} ${timeoutMs}`;
  const hit = originChecks.get(key);
  if (hit && Date.now() < hit.until) return hit.check;
  const check = await checkOrigin(originUrl, timeoutMs);
  if (originChecks.size >= MAX_CACHED_ORIGINS) originChecks.clear();
  originChecks.set(key, { check, until: Date.now() + (check.ok ? ORIGIN_OK_TTL_MS : ORIGIN_FAILED_TTL_MS) });
  return check;
}

async function checkOrigin(originUrl: URL, timeoutMs: number): Promise<ReadyCheck> {
  const started = performance.now();
  try {
    // no-store: a cached /health would report an origin that has gone away as ready.
    const res = await fetch(new URL("/health", originUrl), { signal: AbortSignal.timeout(timeoutMs), cache: "no-store" });
    await res.body?.cancel();
    const latencyMs = Math.round(performance.now() - started);
    return res.ok ? { ok: true, latencyMs } : { ok: false, problems: [`origin answered ${res.status}`], latencyMs };
  } catch (err) {
    const timedOut = err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError");
    return { ok: false, problems: [timedOut ? "origin timed out" : "origin unreachable"] };
  }
}
