// Origin link benchmark, the report: renders the markdown section from the freeze/resume measurements.
import type { Design } from "./origin-link.ts";
import { machineInfo, num, packageVersion, table, type RunInfo } from "./report.ts";
import { percentile } from "./stats.ts";
import { esbuildVersion } from "./worker-build.ts";

/** The issue's targets: a frozen laptop shows offline within 5 s, a resumed one online within 2 s. */
const TARGET_OFFLINE_MS = 5000;
const TARGET_ONLINE_MS = 2000;

export interface DesignResult {
  design: Design;
  /** Per cycle: ms from SIGSTOP to origin_offline at the phone. */
  offlineMs: number[];
  /** Per cycle: ms from SIGCONT to origin_online at the phone. */
  onlineMs: number[];
  /** Events that should not happen (origin_unreachable for an origin that is merely frozen). */
  unexpected: string[];
}

export interface RenderInput extends Omit<RunInfo, "durationSec" | "warmupSec" | "rounds"> {
  cycles: number;
  results: DesignResult[];
  source: string;
  elapsedSec: number;
  ttlMs: number;
  pingMs: number;
  probeEveryMs: number;
  probeRetryMs: number;
}

const s = (ms: number) => `${num(ms, 0)} ms`;
const max = (xs: number[]) => (xs.length > 0 ? Math.max(...xs) : Number.NaN);

export function renderOriginLink(input: RenderInput): string {
  const { ctx } = input;
  const machine = machineInfo(ctx.root);
  const link = input.results.find((r) => r.design.key === "link")!;
  const probe = input.results.find((r) => r.design.key === "probe")!;
  const status = (ok: boolean) => (ok ? "met" : "**not met**");
  const ratio = (a: number, b: number) => `${num(a / b, 2)}×`;

  const rows = input.results.map((r) => [
    r.design.label,
    String(r.offlineMs.length),
    s(percentile(r.offlineMs, 50)),
    s(max(r.offlineMs)),
    s(percentile(r.onlineMs, 50)),
    s(max(r.onlineMs)),
    r.design.key === "probe"
      ? "1.00× / 1.00×"
      : `${ratio(percentile(r.offlineMs, 50), percentile(probe.offlineMs, 50))} / ${ratio(percentile(r.onlineMs, 50), percentile(probe.onlineMs, 50))}`,
    r.unexpected.length === 0 ? "none" : r.unexpected.join("; "),
  ]);
  const summary = table(
    ["Design", "cycles", "frozen → offline p50", "max", "resumed → online p50", "max", "p50 vs probe only (offline / online)", "other origin events"],
    rows,
    "lrrrrrrl",
  );
  const perCycle = table(
    ["Cycle", ...input.results.flatMap((r) => [`${r.design.key}: offline`, `${r.design.key}: online`])],
    Array.from({ length: input.cycles }, (_, i) => [
      String(i + 1),
      ...input.results.flatMap((r) => [s(r.offlineMs[i] ?? Number.NaN), s(r.onlineMs[i] ?? Number.NaN)]),
    ]),
    `l${"r".repeat(input.results.length * 2)}`,
  );

  return `## Origin link: the laptop's sleep and wake at a watching phone (issue 11)

**Command:** \`${ctx.command}\`  
**Date:** ${input.startedAt.toISOString()} (took ${num(input.elapsedSec, 0)} s)  
**Result:** with the origin's link, a frozen origin showed offline at the phone after at most ${s(max(link.offlineMs))}
(p50 ${s(percentile(link.offlineMs, 50))}; target ≤ 5 s: ${status(max(link.offlineMs) <= TARGET_OFFLINE_MS)}) and a resumed one online
after at most ${s(max(link.onlineMs))} (p50 ${s(percentile(link.onlineMs, 50))}; target ≤ 2 s: ${status(max(link.onlineMs) <= TARGET_ONLINE_MS)}),
over ${link.offlineMs.length} cycles. The probe alone, in the same run: p50 ${s(percentile(probe.offlineMs, 50))} / max ${s(max(probe.offlineMs))}
to offline, p50 ${s(percentile(probe.onlineMs, 50))} / max ${s(max(probe.onlineMs))} to online.

${summary}

### Machine

- CPU: ${machine.cpuModel}, ${machine.cores} cores available to Node; ${machine.memoryGiB} GiB RAM; ${machine.os}
- Node ${machine.node}; ${machine.workerd}; miniflare ${packageVersion(ctx.root, "miniflare")}; esbuild ${esbuildVersion()} (wrangler's); ws ${packageVersion(ctx.root, "ws")}
- Load average (1 / 5 / 15 min): ${input.loadBefore} before, ${input.loadAfter} after. Both designs run at once and share
  these cores with each other and with whatever else runs: compare rows of one run with each other.${ctx.note ? `\n- Note: ${ctx.note}` : ""}

### Setup

- **Edge**: the Worker bundled from the ${input.source}, with wrangler's esbuild and wrangler's settings
  (\`bench/worker-build.ts\`), run in workerd through Miniflare directly (\`bench/workerd.ts\`), not \`wrangler dev\`;
  Durable Objects and vars from \`wrangler.toml\` (so the default \`READY_TIMEOUT_MS\` of the probe), identity settings from
  \`test/support/identity.ts\`. One workerd per stack, each with its own presence hub.
- **Origin**: the real origin (\`origin/main.ts\`, \`test/support/spawn-origin.ts\`) as a child process on loopback, its
  port the Worker's \`ORIGIN_URL\` (locally there is no tunnel: the probe goes straight to it), \`--edge\` the Worker's
  direct socket. With the link it has \`OUTPOST_TOKEN\` (an owner's access token) and pings every ${input.pingMs} ms; the
  hub counts a link silent for ${input.ttlMs} ms as gone. Without, it has no credential and the hub knows it only from
  the probe of \`/health\` (every ${input.probeEveryMs / 1000} s while anyone watches; a failure is confirmed
  ${input.probeRetryMs / 1000} s later before the state flips).
- **Phone**: a presence WebSocket (\`GET /api/presence/ws\`, a member's bearer token) in the bench process; an event's
  time is when its message arrived here.
- **A cycle**: wait a random 0.5 s + U(0, ${input.results.map((r) => `${r.design.phaseMs / 1000} s for ${r.design.key}`).join(", ")}),
  so the freeze falls at a random phase of the design's own clock; \`SIGSTOP\` the origin (the process frozen, its TCP
  connections left open, as a sleeping laptop's are) and time until the phone gets \`origin_offline\`; wait again the same
  way; \`SIGCONT\` and time until the phone gets \`origin_online\` (the first one: on waking, the origin may answer the probe
  a moment before its new link is up). ${input.cycles} cycles per design, all at the same time: the link's on one stack
  (workerd, origin, phone), the probe's shared out over ${input.results.find((r) => r.design.key === "probe")?.design.stacks ?? 1} independent stacks (it takes about a
  minute a cycle, and the phone's access token lasts 15 minutes). The per-cycle table lists a design's cycles stack
  after stack.

### Per cycle

${perCycle}
`;
}
