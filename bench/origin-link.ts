// Origin link benchmark (issue 11): a real origin frozen (SIGSTOP) and resumed (SIGCONT) again and again; how long a
// watching phone waits for origin_offline and origin_online, with the origin's link and with the probe alone.
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import os from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { PROBE_EVERY_MS, PROBE_RETRY_MS } from "../durable-objects/presence/model.ts";
import { ORIGIN_LINK_PING_MS, ORIGIN_LINK_TTL_MS } from "../shared/api-types.ts";
import { mintAccessToken, MEMBER, OWNER } from "../test/support/identity.ts";
import { spawnOrigin, trustEdgeEnv, type SpawnedOrigin } from "../test/support/spawn-origin.ts";
import { renderOriginLink, type DesignResult } from "./origin-link-report.ts";
import { loadAverage } from "./report.ts";
import type { BenchContext } from "./run.ts";
import { bundleWorker, PUBLIC_URL, sourceState, startBundledWorker, WORKER_SOURCES } from "./worker-build.ts";
import type { RunningWorker } from "./workerd.ts";

const DEFAULT_CYCLES = 20;
/** No event within this long of a freeze or a resume fails the cycle (and the run). */
const EVENT_TIMEOUT_MS = 120_000;

export interface Design {
  key: "link" | "probe";
  label: string;
  /** Holds before each freeze and each resume are drawn from [0.5 s, 0.5 s + this), so the freeze and the resume fall
   * at a random phase of the design's own clock (the 1 s ping, the 30 s probe). */
  phaseMs: number;
  linked: boolean;
  /**
   * Independent stacks (workerd, origin, phone) that share the cycles, run at once: the probe alone takes about a minute
   * a cycle, and the phone's and the origin's access tokens last 15 minutes.
   */
  stacks: number;
}

const DESIGNS: Design[] = [
  { key: "link", label: "Origin link (1 s pings, 3.5 s TTL) + probe", phaseMs: ORIGIN_LINK_PING_MS, linked: true, stacks: 1 },
  { key: "probe", label: "Probe only (no link: an origin without a credential)", phaseMs: PROBE_EVERY_MS, linked: false, stacks: 4 },
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

interface OriginEvent {
  type: string;
  state: string;
  link: boolean;
  at: number;
}

/** A phone's presence WebSocket: every origin event with the moment it arrived here. */
class Phone {
  readonly events: OriginEvent[] = [];
  readonly #ws: WebSocket;
  state: { state: string; link: boolean } | null = null;

  constructor(url: string, token: string) {
    this.#ws = new WebSocket(`${url.replace(/^http/, "ws")}/api/presence/ws`, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false });
    this.#ws.on("message", (data: Buffer) => {
      const at = Date.now();
      const msg = JSON.parse(data.toString("utf8")) as {
        type: string;
        origin?: { state: string; link: boolean };
        event?: { type: string; data: { state: string; link: boolean } };
      };
      if (msg.type === "snapshot" && msg.origin) this.state = { state: msg.origin.state, link: msg.origin.link };
      if (msg.type === "event" && msg.event?.type.startsWith("origin_")) {
        this.events.push({ type: msg.event.type, state: msg.event.data.state, link: msg.event.data.link, at });
        this.state = { state: msg.event.data.state, link: msg.event.data.link };
      }
    });
  }

  opened(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#ws.once("message", () => resolve());
      this.#ws.once("error", reject);
    });
  }

  /** The first event of `type` after index `from`; its arrival time. */
  async next(type: string, from: number): Promise<OriginEvent> {
    const deadline = Date.now() + EVENT_TIMEOUT_MS;
    for (;;) {
      const hit = this.events.slice(from).find((e) => e.type === type);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`no ${type} within ${EVENT_TIMEOUT_MS} ms (events: ${JSON.stringify(this.events.slice(from))})`);
      await sleep(5);
    }
  }

  close(): void {
    this.#ws.terminate();
  }
}

/** One stack of a design: its own Worker in workerd, its own origin child process, its own phone, `cycles` cycles. */
async function runStack(design: Design, stack: number, scriptPath: string, cycles: number, log: (m: string) => void): Promise<DesignResult> {
  const port = await freePort();
  const worker: RunningWorker = await startBundledWorker(`outpost-${design.key}-${stack}`, scriptPath, { ORIGIN_URL: `http://127.0.0.1:${port}` });
  let origin: SpawnedOrigin | null = null;
  let phone: Phone | null = null;
  try {
    const ownerToken = await mintAccessToken(PUBLIC_URL, OWNER);
    const env = { ...trustEdgeEnv(), OUTPOST_TOKEN: design.linked ? ownerToken : "" };
    origin = await spawnOrigin(["--port", String(port), "--edge", worker.directUrl], env);
    phone = new Phone(worker.directUrl, await mintAccessToken(PUBLIC_URL, MEMBER));
    await phone.opened();
    const result: DesignResult = { design, offlineMs: [], onlineMs: [], unexpected: [] };
    // Online first (the probe-only design learns it from its first probe).
    if (phone.state?.state !== "online") await phone.next("origin_online", 0);
    for (let cycle = 0; cycle < cycles; cycle++) {
      await sleep(500 + Math.random() * design.phaseMs);
      const beforeFreeze = phone.events.length;
      const frozenAt = Date.now();
      origin.child.kill("SIGSTOP");
      const offline = await phone.next("origin_offline", beforeFreeze);
      result.offlineMs.push(offline.at - frozenAt);
      await sleep(500 + Math.random() * design.phaseMs);
      const beforeResume = phone.events.length;
      const resumedAt = Date.now();
      origin.child.kill("SIGCONT");
      const online = await phone.next("origin_online", beforeResume);
      result.onlineMs.push(online.at - resumedAt);
      // A linked origin's link is back too before the next cycle (the probe may have answered first).
      if (design.linked) while (!phone.state?.link) await sleep(5);
      for (const e of phone.events.slice(beforeFreeze)) if (e.type === "origin_unreachable") result.unexpected.push(`cycle ${cycle + 1}: ${e.type}`);
      log(`${design.key}#${stack + 1} cycle ${cycle + 1}/${cycles}: offline after ${result.offlineMs.at(-1)} ms, online after ${result.onlineMs.at(-1)} ms`);
    }
    return result;
  } finally {
    phone?.close();
    if (origin && origin.child.exitCode === null && origin.child.signalCode === null) origin.child.kill("SIGCONT");
    await origin?.stop();
    await worker.stop();
  }
}

/** A design's cycles, shared out over its stacks and run at once; the results in one list. */
async function runDesign(design: Design, scriptPath: string, cycles: number, log: (m: string) => void): Promise<DesignResult> {
  const shares = Array.from({ length: design.stacks }, (_, i) => Math.floor(cycles / design.stacks) + (i < cycles % design.stacks ? 1 : 0));
  const parts = await Promise.all(shares.filter((n) => n > 0).map((n, i) => runStack(design, i, scriptPath, n, log)));
  return {
    design,
    offlineMs: parts.flatMap((p) => p.offlineMs),
    onlineMs: parts.flatMap((p) => p.onlineMs),
    unexpected: parts.flatMap((p, i) => p.unexpected.map((u) => `stack ${i + 1} ${u}`)),
  };
}

export async function originLinkBench(ctx: BenchContext): Promise<string> {
  const cycles = ctx.rounds ?? DEFAULT_CYCLES;
  const startedAt = new Date();
  const loadBefore = loadAverage();
  const tmp = await mkdtemp(join(os.tmpdir(), "outpost-bench-origin-link-"));
  const started = performance.now();
  try {
    ctx.log("bundling the Outpost Worker and starting, per design, workerd, a real origin and a phone's presence WebSocket");
    const source = sourceState();
    const scriptPath = await bundleWorker({ entry: WORKER_SOURCES.entry, outfile: join(tmp, "worker", "index.js") });
    ctx.log(`${cycles} freeze/resume cycles per design, all at once (each stack with its own workerd, origin and phone)`);
    const results = await Promise.all(DESIGNS.map((design) => runDesign(design, scriptPath, cycles, ctx.log)));

    return renderOriginLink({
      ctx,
      cycles,
      results,
      source,
      startedAt,
      loadBefore,
      loadAfter: loadAverage(),
      elapsedSec: (performance.now() - started) / 1000,
      ttlMs: ORIGIN_LINK_TTL_MS,
      pingMs: ORIGIN_LINK_PING_MS,
      probeEveryMs: PROBE_EVERY_MS,
      probeRetryMs: PROBE_RETRY_MS,
    });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
