// The origin's link dropped and restored 50 times in a row, over real processes: the real Worker in workerd, a real
// origin child linked as the owner through a TCP forwarder the test cuts (both sides destroyed, the origin left
// running), the edge's event deliveries through a recording relay, and a phone on the presence WebSocket.
//
// What each round must show, by the hub's rules (durable-objects/presence/links.ts, reachability.ts): a link closed
// without a goodbye (the network dropped it) still counts as up for the rest of its TTL (3.5 s from its last ping), and
// the origin redials at once after a link that worked. So a cut the origin repairs at once changes nothing phones see:
// no origin_* event, the state stays `online` with `link: true`, and the hub holds the new link instead of the old one.
// Each round's two session events are queued while the edge cannot deliver to the origin (its event deliveries are
// refused, just before the cut: a link redialled at once is down too briefly to send anything in between) and reach
// it, once and in order, once the link is back. After the 50 rounds, one drop longer than the TTL
// shows that the flapping left nothing behind that would hide a real outage.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EVENTS_PATH } from "../../../shared/events.ts";
import { MEMBER, OWNER } from "../../support/identity.ts";
import { callEdge, originEvents, subscribe, until, type PresenceMessage, type Subscriber } from "../../support/presence.ts";
import { startRelay, type Relay } from "../../support/relay.ts";
import { spawnOrigin, type SpawnedOrigin } from "../../support/spawn-origin.ts";
import { startStack, type Stack } from "../../support/stack.ts";
import { tcpSockets, type TcpSocket } from "../../support/tcp-sockets.ts";
import { closedPort, tcpForwarder } from "../cli/helpers.ts";

const ROUNDS = 50;

type Forwarder = Awaited<ReturnType<typeof tcpForwarder>>;

interface OriginState {
  online: boolean;
  state: string;
  link: boolean;
  lastSeen: string | null;
}

interface LinkView {
  deviceId: string | null;
  email: string;
  connectedAt: string;
  lastSeen: string;
}

/** What one round saw, for the totals. */
interface Round {
  refused: number;
  batches: number;
  /** Links the hub listed when it first listed the new one (1: the old one was already gone). */
  listedWithNew: number;
  /** From the hub accepting the new link to the origin acknowledging the round's events, in ms (a measurement). */
  ackAfterLinkMs: number;
  /** Whether that came before the outbox's own earliest retry (its first refused attempt + 500 ms). */
  beforeOwnRetry: boolean;
}

let stack: Stack;
let origin: SpawnedOrigin;
/** The edge's requests to the origin (ORIGIN_URL), each event delivery recorded. */
let relay: Relay;
/** Between the relay and the origin: refuses event deliveries while `deliveriesRefused`, passes everything else. */
let tunnel: Forwarder;
/** Between the origin's link (its --edge) and the edge: what the test cuts. */
let linkPath: Forwarder;
let phone: Subscriber;
let owner = "";
let deliveriesRefused = false;
let linkedAt = "";
const rounds: Round[] = [];
const connections = new Set<string>();

const edge = <T = Record<string, unknown>>(method: string, path: string, body?: unknown) => callEdge<T>(stack.edgeUrl, owner, method, path, body);
const links = async () => (await edge<{ originLinks: LinkView[] }>("GET", "/api/devices")).body.originLinks;
const presence = async () => (await edge<{ seq: number; origin: OriginState }>("GET", "/api/presence")).body;
const port = (url: string) => Number(new URL(url).port);

/** The origin's TCP sockets to the edge (through the forwarder), in any state: one, established, or a socket leaked. */
const originLinkSockets = () => tcpSockets(origin.child.pid ?? -1, { remotePort: port(linkPath.url) });
/** The forwarder's accepted connections from the origin (this process; its listening socket left out). */
const forwardedLinkSockets = () => tcpSockets(process.pid, { localPort: port(linkPath.url) }).filter((s) => s.state !== "LISTEN");

/** The origin_* events the phone received after its first `from` events, as [type, state, link]. */
function originChanges(from = 0): [string, string, boolean][] {
  return phone
    .events()
    .slice(from)
    .filter((e) => e.type.startsWith("origin_"))
    .map((e) => [e.type, String(e.data.state), e.data.link === true]);
}

/** The phone's event for `sessionId` of `type`, once it has arrived. */
function phoneEvent(sessionId: string, type: string) {
  return until(() => phone.events().find((e) => e.sessionId === sessionId && e.type === type), 10_000, `${type} for ${sessionId} at the phone`);
}

/** Resolves once the origin has applied the event `seq`, having applied each event before it once, in order. */
async function originHasAll(seq: number, what: string): Promise<void> {
  await until(() => ((originEvents(origin.dataDir).at(-1)?.seq ?? 0) >= seq ? true : undefined), 10_000, what);
  const applied = originEvents(origin.dataDir).map((e) => e.seq);
  expect(applied).toEqual(Array.from({ length: applied.length }, (_, i) => i + 1));
}

/** until(), saying what it last saw when it times out. */
function waitFor<T>(check: () => T | undefined | Promise<T | undefined>, what: string, seen: () => unknown, timeoutMs = 10_000): Promise<T> {
  return until(check, timeoutMs, what).catch((err: unknown) => {
    throw new Error(`${err instanceof Error ? err.message : String(err)}; last seen: ${JSON.stringify(seen())}`);
  });
}

const justOne = (sockets: TcpSocket[]) => sockets.length === 1 && sockets[0]?.state === "ESTABLISHED";

/** Resolves once the origin and the forwarder each hold exactly one connection of the link, established. */
function oneLinkSocket(what: string): Promise<true> {
  return waitFor(
    () => (justOne(originLinkSockets()) && justOne(forwardedLinkSockets()) ? true : undefined),
    what,
    () => ({ origin: originLinkSockets(), forwarder: forwardedLinkSockets() }),
  );
}

/**
 * One round: event deliveries refused, a session starts (its delivery is refused: it waits in the outbox) and ends;
 * deliveries allowed again, and the link's connection cut. The origin redials at once, the hub swaps the old link for
 * the new one and flushes the outbox at once.
 */
async function flap(r: number): Promise<void> {
  const id = `flap-${String(r).padStart(2, "0")}`;
  const from = phone.events().length;
  const attempts = relay.deliveries.length;
  deliveriesRefused = true;
  expect((await edge("POST", `/api/heartbeat/${id}`, { name: id, hostname: "flap" })).status, id).toBe(200);
  const online = await phoneEvent(id, "session_online");
  const firstRefusal = await until(
    () => relay.deliveries.slice(attempts).find((d) => d.status === 0 && d.ids.includes(online.id)),
    10_000,
    `the refused delivery of ${id}'s session_online`,
  );
  expect((await edge("DELETE", `/api/heartbeat/${id}`, {})).status, id).toBe(200);
  deliveriesRefused = false;
  linkPath.cut();

  const ended = await phoneEvent(id, "session_ended");
  const listed = await until(
    async () => {
      const now = await links();
      return now.some((l) => l.connectedAt > linkedAt) ? now : undefined;
    },
    10_000,
    `the new link after round ${r}`,
  );
  let listing = listed;
  const fresh = await waitFor(
    async () => {
      listing = await links();
      const [only, ...more] = listing;
      return only && more.length === 0 && only.connectedAt > linkedAt ? only : undefined;
    },
    `the old link gone after round ${r}`,
    () => listing,
  );
  expect(fresh).toMatchObject({ email: OWNER, deviceId: null });
  linkedAt = fresh.connectedAt;
  connections.add(fresh.connectedAt);
  await originHasAll(ended.seq, `${id}'s events at the origin`);
  // The relay notes a delivery once the origin's answer has passed through it, a moment after the origin stored it.
  await until(() => (relay.acknowledged().has(ended.id) ? true : undefined), 10_000, `${id}'s delivery acknowledged`);
  // The phone: the round's two session events, in order, and nothing about the origin.
  expect(
    phone
      .events()
      .slice(from)
      .map((e) => `${e.type}:${e.sessionId ?? e.data.state}`),
    id,
  ).toEqual([`session_online:${id}`, `session_ended:${id}`]);
  await oneLinkSocket(`one link socket after round ${r}`);
  // On the wire: refused while deliveries were refused, then acknowledged once, both events in seq order.
  const round = relay.deliveries.slice(attempts);
  const refused = round.filter((d) => d.status === 0);
  const acked = round.filter((d) => d.status === 200);
  expect(
    round.filter((d) => d.status !== 0 && d.status !== 200),
    id,
  ).toEqual([]);
  for (const d of refused) expect([online.id, ended.id].slice(0, d.ids.length), id).toEqual(d.ids);
  expect(
    acked.flatMap((d) => d.ids),
    id,
  ).toEqual([online.id, ended.id]);
  expect(
    acked.reduce((sum, d) => sum + d.duplicates, 0),
    id,
  ).toBe(0);
  const ackAt = acked.at(-1)?.at ?? 0;
  rounds.push({
    refused: refused.length,
    batches: acked.length,
    listedWithNew: listed.length,
    ackAfterLinkMs: ackAt - Date.parse(fresh.connectedAt),
    beforeOwnRetry: ackAt < firstRefusal.at + 500,
  });
}

beforeAll(async () => {
  // The origin's port is fixed first, so the tunnel can point at it before the origin (or the edge) exists.
  const originPort = await closedPort();
  tunnel = await tcpForwarder(`http://127.0.0.1:${originPort}`, (chunk, drop) => {
    if (deliveriesRefused && chunk.toString("latin1").startsWith(`POST ${EVENTS_PATH} `)) drop();
  });
  relay = await startRelay(tunnel.url);
  stack = await startStack({ originUrl: relay.url });
  owner = await stack.mintToken(OWNER);
  linkPath = await tcpForwarder(stack.edgeUrl);
  origin = await spawnOrigin(["--port", String(originPort), "--edge", linkPath.url], { OUTPOST_TOKEN: owner });
  const first = await until(async () => (await links())[0], 15_000, "the origin's link to come up");
  linkedAt = first.connectedAt;
  connections.add(linkedAt);
  await until(async () => ((await presence()).origin.state === "online" ? true : undefined), 15_000, "the origin online");
  phone = await subscribe(stack.edgeUrl, await stack.mintToken(MEMBER));
  await until(() => phone.messages[0], 10_000, "the phone's snapshot");
  await originHasAll((await presence()).seq, "the first events at the origin");
  await oneLinkSocket("one link socket at the start");
}, 90_000);

afterAll(async () => {
  phone?.close();
  await origin?.stop();
  await stack?.stop();
  await linkPath?.close();
  await tunnel?.close();
  await relay?.close();
});

describe("the origin's link dropped and restored 50 times in a row", () => {
  it("starts linked and online", () => {
    const snapshot = phone.messages[0] as PresenceMessage & { origin?: OriginState };
    expect(snapshot).toMatchObject({ type: "snapshot", origin: { online: true, state: "online", link: true } });
  });

  it("each round: the old link replaced by one new one, the round's events at the origin once and in order, the state unchanged", async () => {
    const startedAt = Date.now();
    for (let r = 1; r <= ROUNDS; r++) await flap(r);
    const seconds = (Date.now() - startedAt) / 1000;
    expect(rounds).toHaveLength(ROUNDS);
    // Every round over a link of its own: 50 new connections after the first.
    expect(connections.size).toBe(ROUNDS + 1);
    expect(originChanges()).toEqual([]);
    expect((await presence()).origin).toMatchObject({ online: true, state: "online", link: true });
    const sorted = rounds.map((r) => r.ackAfterLinkMs).sort((a, b) => a - b);
    console.log(
      [
        `${ROUNDS} rounds in ${seconds.toFixed(1)} s: ${connections.size} link connections, ${originChanges().length} origin events at the phone`,
        `refused attempts ${rounds.reduce((s, r) => s + r.refused, 0)}, acknowledged batches ${rounds.reduce((s, r) => s + r.batches, 0)}`,
        `rounds where the hub listed the old link beside the new one: ${rounds.filter((r) => r.listedWithNew > 1).length}`,
        `acknowledged after the new link: median ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted.at(-1)} ms; before the outbox's own earliest retry in ${rounds.filter((r) => r.beforeOwnRetry).length} of ${ROUNDS} rounds`,
      ].join("\n"),
    );
  }, 120_000);

  it("after the flapping, a drop longer than the link's TTL still shows: offline, online by the probe, then the link", async () => {
    const from = phone.events().length;
    // Cut, and every reconnection refused until the hub has timed the link out.
    linkPath.retarget(`http://127.0.0.1:${await closedPort()}`);
    await waitFor(
      () => (originChanges(from).length >= 2 ? true : undefined),
      "offline, then online by the probe",
      () => originChanges(from),
      20_000,
    );
    expect(await links()).toEqual([]);
    linkPath.retarget(stack.edgeUrl);
    await waitFor(
      () => (originChanges(from).length >= 3 ? true : undefined),
      "online over the new link",
      () => originChanges(from),
      20_000,
    );
    // The tunnel worked throughout: the probe alone brings the state back (link false) before the link does.
    expect(originChanges(from)).toEqual([
      ["origin_offline", "offline", false],
      ["origin_online", "online", false],
      ["origin_online", "online", true],
    ]);
    const offline = phone.events().find((e, i) => i >= from && e.type === "origin_offline");
    expect(offline?.data.lastSeen).toEqual(expect.any(String));
  }, 60_000);

  it("ends right: online over exactly one link, one socket on each side, every event at the origin once and in order", async () => {
    expect((await presence()).origin).toMatchObject({ online: true, state: "online", link: true });
    const final = await until(
      async () => {
        const now = await links();
        return now.length === 1 ? now : undefined;
      },
      10_000,
      "exactly one link",
    );
    expect(final).toEqual([expect.objectContaining({ email: OWNER, deviceId: null })]);
    await oneLinkSocket("one link socket at the end");
    const { seq } = await presence();
    await originHasAll(seq, "every event at the origin");

    // Every event the hub issued, as a phone replaying from the start sees it, against what the origin applied.
    const replay = await subscribe(stack.edgeUrl, owner, "?after=0");
    try {
      await until(() => (replay.events().at(-1)?.seq === seq ? true : undefined), 10_000, "the replay from the start");
      const log = replay.events().map((e) => [e.id, e.seq, e.type, e.sessionId]);
      expect(originEvents(origin.dataDir).map((e) => [e.id, e.seq, e.type, e.session_id])).toEqual(log);
      // The live phone saw every event after its snapshot, in order, none twice.
      const since = phone.messages[0]?.seq ?? 0;
      expect(phone.events().map((e) => e.id)).toEqual(
        replay
          .events()
          .filter((e) => e.seq > since)
          .map((e) => e.id),
      );
    } finally {
      replay.close();
    }
    // On the wire: each event acknowledged exactly once, batches in seq order, no duplicates at the origin.
    await until(() => (relay.acknowledged().size >= seq ? true : undefined), 10_000, "the last delivery acknowledged");
    const acked = relay.acknowledged();
    expect([...acked.values()].every((n) => n === 1)).toBe(true);
    expect(acked.size).toBe(seq);
    const ok = relay.deliveries.filter((d) => d.status === 200);
    expect(ok.flatMap((d) => d.seqs)).toEqual(Array.from({ length: seq }, (_, i) => i + 1));
    expect(ok.reduce((sum, d) => sum + d.duplicates, 0)).toBe(0);
    console.log(`${seq} events issued; ${ok.length} batches acknowledged; ${relay.deliveries.length - ok.length} attempts refused`);
  });
});
