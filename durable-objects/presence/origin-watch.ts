// What the hub knows of the origin: its links and the probe through the tunnel, joined into one state that is stored,
// logged as an event and pushed to phones on every change.
import { ORIGIN_LINK_TTL_MS, type OriginReachability, type OriginState } from "../../shared/api-types.ts";
import { Links, type LinkAttachment } from "./links.ts";
import { PROBE_RETRY_MS } from "./model.ts";
import { probeOrigin, type Outbox } from "./outbox.ts";
import { Reachability, type OriginTransition } from "./reachability.ts";
import { eventMessage, WATCHER_HEADER, type Watchers } from "./sockets.ts";
import type { PresenceStore } from "./store.ts";

const STATES: readonly string[] = ["online", "offline", "unreachable"] satisfies OriginReachability[];

export class OriginWatch {
  readonly links: Links;
  readonly #ctx: DurableObjectState;
  readonly #store: PresenceStore;
  readonly #watchers: Watchers;
  readonly #outbox: Outbox;
  #reach: Reachability;
  #probeAt = 0;
  /** When the last probe started: link changes ask for a probe at once, but no more often than a failure's retry. */
  #probedAt = 0;

  constructor(ctx: DurableObjectState, store: PresenceStore, watchers: Watchers, outbox: Outbox) {
    this.#ctx = ctx;
    this.#store = store;
    this.#watchers = watchers;
    this.#outbox = outbox;
    this.links = new Links(ctx);
    this.#reach = this.#load();
    // After a restart (a deploy drops every socket) a link that was up counts as seen now, for one TTL: its origin
    // reconnects at once, and phones see no blink offline. Sessions get the same grace (hub.ts).
    if (this.#reach.link) this.links.remember(Date.now());
  }

  /** The stored state; hubs from before links stored only `origin_online`. */
  #load(): Reachability {
    const text = this.#store.metaText("origin_state");
    const online = this.#store.metaNumber("origin_online");
    const state = text !== null && STATES.includes(text) ? (text as OriginReachability) : online === null ? null : online === 1 ? "online" : "offline";
    return new Reachability({ state, lastSeen: this.#store.metaNumber("origin_last_seen"), link: this.#store.metaNumber("origin_link") === 1 });
  }

  /**
   * An origin's link on /origin, forwarded by the Worker once it checked the credential (owners and members only): the
   * origin is up now, the outbox is tried at once, and the tunnel is probed at once. Null for any other request.
   */
  open(request: Request, now: number): Response | null {
    if (new URL(request.url).pathname !== "/origin" || request.headers.get("upgrade")?.toLowerCase() !== "websocket") return null;
    const who = JSON.parse(request.headers.get(WATCHER_HEADER) ?? "null") as Omit<LinkAttachment, "connectedAt" | "seenAt"> | null;
    if (!who) return null;
    return this.#opened({ sub: who.sub, email: who.email, exp: who.exp, deviceId: who.deviceId ?? null, role: who.role }, now);
  }

  #opened(who: Omit<LinkAttachment, "connectedAt" | "seenAt">, now: number): Response {
    // A link that went silent while nobody watched is settled first, so the log says the origin was away meanwhile.
    this.settle(now);
    const response = this.links.accept(who, now);
    this.#outbox.retryNow();
    this.#linkState(true, now, now);
    return response;
  }

  closed(ws: WebSocket, code: number, now: number): void {
    this.links.closed(ws, code);
    this.settle(now);
  }

  /** Brings the link's side up to date: a link silent for its TTL is gone, and the state follows. */
  settle(now: number): void {
    const { up, lastSeen } = this.links.sweep(now);
    this.#linkState(up, now, lastSeen);
  }

  /** What a proxied request saw of the origin; a failure is confirmed by a probe soon after. */
  report(ok: boolean, now: number): void {
    this.#change((reach) => reach.observe(ok, now, reach.generation, this.links.alive(now)), now);
    if (!ok) this.#probeAt = now + this.#reach.nextProbeIn();
  }

  probeDue(now: number): boolean {
    return now >= this.#probeAt;
  }

  /** A first failure waits for its confirming probe, which runs even while nobody watches. */
  confirming(): boolean {
    return this.#reach.confirming();
  }

  /** GET /health through the tunnel; a result that arrives after the link changed says nothing about the new link. */
  async probe(env: Env, now: number): Promise<void> {
    this.#probedAt = now;
    const generation = this.#reach.generation;
    const ok = await probeOrigin(env);
    if (ok === null) {
      this.#probeAt = now + this.#reach.nextProbeIn();
      return;
    }
    const at = Date.now();
    // The tunnel answers: whatever waits in the outbox goes now, even when the state was online already (the link can
    // come back before the tunnel does, and its flush then failed into the backoff).
    if (ok) this.#outbox.retryNow();
    this.#change((reach) => reach.observe(ok, at, generation, this.links.alive(at)), at);
    // Only once the outcome is stored: the runtime's retry of an alarm that threw before this probes again.
    this.#probeAt = at + this.#reach.nextProbeIn();
  }

  /** The origin acknowledged a delivery. */
  delivered(now: number): void {
    this.#reach.seen(now);
  }

  view(): OriginState {
    return this.#reach.view(this.links.lastSeen());
  }

  /** When something is next due while anyone watches: the probe, and the moment a silent link would time out. */
  dueAt(now: number): number {
    const links = this.#reach.link ? (this.links.nextTimeout() ?? now + ORIGIN_LINK_TTL_MS) : Infinity;
    return Math.min(Math.max(now, this.#probeAt), links);
  }

  #linkState(up: boolean, now: number, lastSeen: number | null): void {
    const generation = this.#reach.generation;
    this.#change((reach) => reach.setLink(up, now, lastSeen), now);
    // Whether the tunnel works is a new question once the link changed: ask it now (a link flapping in a loop gets
    // no more than one probe per PROBE_RETRY_MS).
    if (this.#reach.generation !== generation) this.#probeAt = Math.max(now, this.#probedAt + PROBE_RETRY_MS);
  }

  /**
   * Applies a change to a copy of the state and keeps it only once stored: after a failed write (the alarm throws and
   * is retried, a report is refused) the next probe or report sees the old state and issues the event again.
   */
  #change(apply: (reach: Reachability) => OriginTransition | null, now: number): void {
    const next = this.#reach.copy();
    this.#emit(next, apply(next), now);
    this.#reach = next;
  }

  /** Stores the state and its event in one transaction, then tells the watchers. */
  #emit(reach: Reachability, transition: OriginTransition | null, now: number): void {
    if (!transition) return;
    // Back online: deliver what waited at once instead of waiting out the outbox's backoff.
    if (transition.type === "origin_online") this.#outbox.retryNow();
    const saved = reach.saved();
    const appended = this.#ctx.storage.transactionSync(() => {
      this.#store.setMeta("origin_state", saved.state);
      this.#store.setMeta("origin_last_seen", saved.lastSeen);
      this.#store.setMeta("origin_link", saved.link ? 1 : 0);
      return this.#store.appendEvent(transition.type, null, now, { ...transition.data });
    });
    this.#watchers.broadcast(eventMessage(appended), now);
  }
}
