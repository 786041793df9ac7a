// Talks to the origin for the hub: signed, ordered event batches with backoff, and the /health probe.
import { ASSERTION_HEADER, signAssertion } from "../../shared/assertion.ts";
import { getAuthConfig, getConfig } from "../../shared/settings/index.ts";
import { OUTBOX_BATCH, OUTBOX_MAX_BACKOFF_MS } from "./model.ts";
import type { PresenceStore } from "./store.ts";
import { EDGE_ROLE, EDGE_SUBJECT, EVENTS_PATH } from "../../shared/events.ts";
import { PATHS } from "../../shared/paths.ts";

/** Batches per alarm run: a long backlog drains over a few runs instead of holding one alarm for minutes. */
const MAX_BATCHES_PER_RUN = 20;
const DELIVERY_TIMEOUT_MS = 10_000;

/** Exponential from 1 s, capped at 60 s, with jitter so many hubs do not retry in step. */
function backoffMs(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(OUTBOX_MAX_BACKOFF_MS, 1000 * 2 ** Math.min(attempt - 1, 16));
  return Math.round(ceiling * (0.5 + random() * 0.5));
}

export async function bodySha256(body: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(body)));
  return btoa(String.fromCharCode(...digest))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

/** The outbox's delivery state; the queue itself is in SQLite, the backoff only in memory (a restart retries at once). */
export class Outbox {
  readonly #store: PresenceStore;
  readonly #env: Env;
  attempts = 0;
  retryAt = 0;
  delivered = 0;

  constructor(store: PresenceStore, env: Env) {
    this.#store = store;
    this.#env = env;
  }

  /** When the alarm should next try, or null when nothing is queued. */
  dueAt(now: number): number | null {
    return this.#store.hasOutbox() ? Math.max(now, this.retryAt) : null;
  }

  /** The origin is back: skip the rest of the backoff. */
  retryNow(): void {
    this.retryAt = 0;
  }

  /**
   * Sends queued events in seq order until the queue is empty, the origin refuses, or the run's budget is spent, and
   * returns how many were acknowledged. Outcomes only drive the backoff: whether the origin counts as online is for the
   * probe and the gateway's reports to say, so an origin whose /health and events endpoint disagree cannot flap.
   */
  async flush(now: number): Promise<number> {
    if (now < this.retryAt) return 0;
    this.#store.dropStaleOutbox(now);
    let delivered = 0;
    for (let i = 0; i < MAX_BATCHES_PER_RUN; i++) {
      const batch = this.#store.outboxBatch(OUTBOX_BATCH);
      if (batch.length === 0) break;
      // The body is assembled from the stored wire form, so a retry sends exactly the same bytes.
      const body = `{"events":[${batch.map((b) => b.event).join(",")}]}`;
      const outcome = await this.#post(body);
      if (!outcome.ok) {
        this.attempts++;
        this.retryAt = Date.now() + backoffMs(this.attempts);
        console.log(JSON.stringify({ msg: "presence outbox retry", attempt: this.attempts, detail: outcome.detail }));
        break;
      }
      this.#store.ackOutbox(batch.at(-1)!.seq);
      this.attempts = 0;
      this.retryAt = 0;
      delivered += batch.length;
    }
    this.delivered += delivered;
    return delivered;
  }

  async #post(body: string): Promise<{ ok: boolean; detail: string }> {
    const config = getConfig(this.#env);
    const auth = getAuthConfig(this.#env);
    if (!config.ok || !auth.ok) return { ok: false, detail: "configuration invalid; see /ready" };
    const token = await signAssertion(auth.auth, {
      sub: EDGE_SUBJECT,
      email: "",
      role: EDGE_ROLE,
      htm: "POST",
      htu: EVENTS_PATH,
      body_sha256: await bodySha256(body),
    });
    try {
      const res = await fetch(new URL(EVENTS_PATH, config.config.originUrl), {
        method: "POST",
        headers: { "content-type": "application/json", [ASSERTION_HEADER]: token },
        body,
        signal: AbortSignal.timeout(Math.min(config.config.originTimeoutMs, DELIVERY_TIMEOUT_MS)),
        // Never through the tunnel zone's cache (see worker/proxy/index.ts).
        cache: "no-store",
      });
      await res.body?.cancel();
      return { ok: res.ok, detail: `origin answered ${res.status}` };
    } catch (err) {
      return { ok: false, detail: err instanceof Error ? `${err.name}: ${err.message}` : "fetch failed" };
    }
  }
}

/** GET ${ORIGIN_URL}/health; null when the settings are broken (nothing to probe). */
export async function probeOrigin(env: Env): Promise<boolean | null> {
  const config = getConfig(env);
  if (!config.ok) return null;
  try {
    const res = await fetch(new URL(PATHS.health, config.config.originUrl), {
      signal: AbortSignal.timeout(config.config.readyTimeoutMs),
      cache: "no-store",
    });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}
