// The origin's one reachability state, joined from its link (is the process alive?) and the probe through the tunnel
// (can the edge reach it?); pure bookkeeping: the hub persists, logs and broadcasts the transitions it returns.
import type { OriginReachability, OriginState } from "../../shared/api-types.ts";
import { PROBE_EVERY_MS, PROBE_FAILURES_TO_FLIP, PROBE_RETRY_MS, iso } from "./model.ts";

/** What the probe says, debounced: "failing" only after PROBE_FAILURES_TO_FLIP failures in a row; null: no word yet. */
type Verdict = "ok" | "failing" | null;

type OriginEventType = "origin_online" | "origin_offline" | "origin_unreachable";

export interface OriginTransition {
  type: OriginEventType;
  data: OriginState;
}

/** What survives a restart of the hub (the rest is rebuilt from it). */
export interface SavedReachability {
  state: OriginReachability | null;
  lastSeen: number | null;
  link: boolean;
}

const EVENT_OF: Record<OriginReachability, OriginEventType> = {
  online: "origin_online",
  offline: "origin_offline",
  unreachable: "origin_unreachable",
};

/**
 * The rules:
 * - link up: `online`, or `unreachable` once the probe is failing while the link is still pinging (the process is
 *   alive, the tunnel is not);
 * - no link: the probe alone decides, as before links existed (`online` / `offline`), so an origin without a
 *   credential behaves as it always did;
 * - the link going down is `offline` at once (its TTL is its own debounce); the probe's earlier word is forgotten, so
 *   only a probe made after that can bring it back without the link;
 * - a probe result from before the link last changed is stale and ignored (the generation);
 * - every change of what phones see is an event: a link coming up while the probe already said `online` (the origin
 *   answered it first on waking) is a second origin_online, now with `link: true`.
 */
export class Reachability {
  #state: OriginReachability | null;
  #lastSeen: number | null;
  #link: boolean;
  /** The `link` the last event showed: phones hear of the link coming up even when the state stays `online`. */
  #shownLink: boolean;
  /** Whether the link was pinging when the probe last failed: `unreachable` needs the process to be seen alive. */
  #alive = true;
  #verdict: Verdict = null;
  #failures = 0;
  #generation = 0;

  constructor(saved: SavedReachability) {
    this.#state = saved.state;
    this.#lastSeen = saved.lastSeen;
    this.#link = saved.link;
    this.#shownLink = saved.link;
    // The verdict that explains the saved state, so a restart changes nothing by itself.
    if (saved.state === "unreachable" || (saved.state === "offline" && !saved.link)) {
      this.#verdict = "failing";
      this.#failures = PROBE_FAILURES_TO_FLIP;
    } else if (saved.state === "online" && !saved.link) this.#verdict = "ok";
  }

  get link(): boolean {
    return this.#link;
  }

  /** A copy to fall back to: the hub changes its state only once the change is stored (origin-watch.ts). */
  copy(): Reachability {
    const c = new Reachability({ state: this.#state, lastSeen: this.#lastSeen, link: this.#link });
    c.#shownLink = this.#shownLink;
    c.#alive = this.#alive;
    c.#verdict = this.#verdict;
    c.#failures = this.#failures;
    c.#generation = this.#generation;
    return c;
  }

  /** Changes with every link transition; a probe started under an older one is ignored. */
  get generation(): number {
    return this.#generation;
  }

  /** The link came up, or its last socket went silent or closed; `lastSeen` is when it was last heard from. */
  setLink(up: boolean, now: number, lastSeen: number | null): OriginTransition | null {
    if (up === this.#link) return null;
    this.#link = up;
    this.#generation++;
    this.#verdict = null;
    this.#failures = 0;
    if (up) this.#lastSeen = now;
    else if (lastSeen !== null) this.#lastSeen = Math.max(this.#lastSeen ?? 0, lastSeen);
    return this.#settle();
  }

  /**
   * A probe of /health through the tunnel, or what a proxied request saw of the origin. `alive`: a link pinged just now
   * (not merely within its TTL).
   */
  observe(ok: boolean, now: number, generation = this.#generation, alive = true): OriginTransition | null {
    if (generation !== this.#generation) return null;
    this.#alive = alive;
    if (ok) {
      this.#failures = 0;
      this.#verdict = "ok";
      this.#lastSeen = now;
    } else {
      this.#failures++;
      if (this.#failures >= PROBE_FAILURES_TO_FLIP) this.#verdict = "failing";
    }
    return this.#settle();
  }

  /** The origin acknowledged a delivery: it is alive, whatever the state says. */
  seen(now: number): void {
    if (this.#state === "online") this.#lastSeen = now;
  }

  /** A failure is waiting to be confirmed or cleared by the next probe. */
  confirming(): boolean {
    return this.#failures > 0 && this.#failures < PROBE_FAILURES_TO_FLIP;
  }

  /** How long until the next probe: soon after a first failure, to confirm it; else the usual interval. */
  nextProbeIn(): number {
    return this.confirming() ? PROBE_RETRY_MS : PROBE_EVERY_MS;
  }

  /** The state as phones see it; `linkSeen` is the link's last ping, newer than anything stored while it is up. */
  view(linkSeen: number | null): OriginState {
    const state = this.#state ?? "offline";
    const seen = this.#link && linkSeen !== null ? Math.max(linkSeen, this.#lastSeen ?? 0) : this.#lastSeen;
    return { online: state === "online", lastSeen: iso(seen), state, link: this.#link };
  }

  saved(): SavedReachability {
    return { state: this.#state, lastSeen: this.#lastSeen, link: this.#link };
  }

  #derive(): OriginReachability | null {
    if (this.#link) {
      if (this.#verdict !== "failing") return "online";
      // Failing while the link has stopped pinging (the laptop froze, the process was killed and its link lingers): not
      // `unreachable` but, at the link's TTL, `offline`; until then nothing changes.
      return this.#alive ? "unreachable" : null;
    }
    if (this.#verdict === "ok") return "online";
    // Nothing known yet (no link, no verdict): stay unknown rather than report a state nobody observed.
    if (this.#verdict === null && this.#state === null) return null;
    return "offline";
  }

  #settle(): OriginTransition | null {
    const next = this.#derive();
    if (next === null || (next === this.#state && this.#link === this.#shownLink)) return null;
    this.#state = next;
    this.#shownLink = this.#link;
    return { type: EVENT_OF[next], data: this.view(null) };
  }
}
