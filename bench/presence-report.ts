// Presence benchmark, the report: renders the markdown section from the measurements.
import { statusSummary } from "./http-load.ts";
import type { ExpiryResult } from "./presence-expiry.ts";
import type { FanoutResult } from "./presence-fanout.ts";
import { INGEST_LABELS, MIN_GAP_MS, type IngestKey, type IngestResult } from "./presence-ingest.ts";
import {
  addDelta,
  BATCH,
  CONNECTIONS,
  EXPIRY_SESSIONS,
  EXPIRY_SPREAD_MS,
  EXPIRY_TTL_S,
  INGEST_TTL_S,
  MEMBERS,
  POOL,
  SESSIONS_PER_MEMBER,
  SLOW_LOOKUP_MS,
  TARGET_EXPIRY_EXTRA_MS,
  TARGET_HEARTBEATS_PER_SEC,
  TARGET_ROWS_PER_BEAT,
  UNRELATED_KEYS,
  type HubStats,
  type StatsDelta,
} from "./presence-shared.ts";
import { machineInfo, num, packageVersion, table, type RunInfo } from "./report.ts";
import { percentile } from "./stats.ts";
import { esbuildVersion } from "./worker-build.ts";

export interface RenderInput extends RunInfo {
  elapsedSec: number;
  fan: FanoutResult;
  createDelta: StatsDelta;
  ingest: Map<IngestKey, IngestResult>;
  ingestFinal: HubStats;
  stubEvents: number;
  expiry: ExpiryResult[];
  hubExpiryStats: StatsDelta;
  redisVersion: string;
  redisArgs: string[];
  /** What the Worker was bundled from. */
  source: string;
}

export function render(input: RenderInput): string {
  const { ctx, ingest, fan } = input;
  const machine = machineInfo(ctx.root);
  const get = (key: IngestKey) => ingest.get(key)!;
  const single = get("hubSingle");
  const batch = get("hubBatch");
  const steady = addDelta(single.stats, batch.stats);
  const rowsPerBeat = steady.heartbeats > 0 ? steady.rowsWritten / steady.heartbeats : Number.NaN;
  const hubExp = input.expiry[0]!;
  const hubP99 = percentile(hubExp.latencyMs, 99);
  const status = (ok: boolean) => (ok ? "met" : "**not met**");
  const ms = (values: number[], p: number, d = 1) => num(percentile(values, p), d);

  const ingestTable = table(
    ["Target", "heartbeats/s", "per round", "requests/s", "p50 ms", "p99 ms", "× Outpost single", "server CPU µs / heartbeat", "responses"],
    (Object.keys(INGEST_LABELS) as IngestKey[]).map((key) => {
      const r = get(key);
      return [
        INGEST_LABELS[key],
        num(r.unitsPerSec, 0),
        r.roundsUnitsPerSec.map((x) => num(x, 0)).join(" / "),
        num(r.rps, 0),
        num(r.p50Ms, 2),
        num(r.p99Ms, 2),
        key === "hubSingle" ? "1.00×" : `${num(r.unitsPerSec / single.unitsPerSec, 2)}×`,
        num(r.cpuUsPerUnit, 0),
        statusSummary(r.statuses) +
          (r.rejected > 0 ? `; ${r.rejected} refused inside batches` : "") +
          (r.held > 0 ? `; ${r.held} requests held ${num(r.heldMs / 1000, 1)} s in total by the 1/s pacing (pool-bound)` : ""),
      ];
    }),
    "lrrrrrrrl",
  );

  const statsRow = (label: string, d: StatsDelta) => [
    label,
    String(d.heartbeats),
    String(d.rowsWritten),
    num(d.heartbeats > 0 ? d.rowsWritten / d.heartbeats : Number.NaN, 4),
    String(d.alarmSets),
    String(d.alarmRuns),
    String(d.events),
  ];
  const rowsTable = table(
    ["Window", "heartbeats (hub)", "rows written", "rows / heartbeat", "alarm sets", "alarm runs", "events"],
    [
      statsRow(`Session creation (first beat of ${POOL.toLocaleString("en-US")} sessions, batches of 100, incl. outbox delivery)`, input.createDelta),
      statsRow("Steady state: single-session runs", single.stats),
      statsRow(`Steady state: batch runs (${BATCH} per request)`, batch.stats),
      statsRow("**Steady state, both**", steady),
    ],
    "lrrrrrr",
  );

  const expiryTable = table(
    ["Mechanism", "TTL", "events within 2 × TTL", "p50 ms after lapse", "p99 ms after lapse", "max ms", "p99 from last write (TTL + …)"],
    input.expiry.map((e) => [
      e.label,
      `${e.ttlSec} s`,
      `${e.arrived} / ${e.sessions}`,
      ms(e.latencyMs, 50),
      ms(e.latencyMs, 99),
      e.latencyMs.length > 0 ? num(Math.max(...e.latencyMs), 1) : "n/a",
      e.latencyMs.length > 0 ? `${num(e.ttlSec * 1000 + percentile(e.latencyMs, 99), 0)} ms` : "n/a",
    ]),
    "lrrrrrr",
  );

  return `## Presence: heartbeat ingest, expiry, fan-out, rows written (issue 4)

**Command:** \`${ctx.command}\`  
**Date:** ${input.startedAt.toISOString()} (took ${num(input.elapsedSec, 0)} s)  
**Result:**
heartbeat ingest into one hub ${status(single.unitsPerSec >= TARGET_HEARTBEATS_PER_SEC)} for single-session requests
(${num(single.unitsPerSec, 0)}/s, target ≥ ${TARGET_HEARTBEATS_PER_SEC.toLocaleString("en-US")}/s) and ${status(batch.unitsPerSec >= TARGET_HEARTBEATS_PER_SEC)} with batches
(${num(batch.unitsPerSec, 0)}/s${batch.held > 0 ? `, a lower bound: the ${POOL.toLocaleString("en-US")}-session pool at 1 beat/s each held it back` : ""}); expiry ${status(hubExp.arrived === hubExp.sessions && hubP99 < TARGET_EXPIRY_EXTRA_MS)}
(p99 ${num(hubP99, 1)} ms after the lapse, i.e. TTL + ${num(hubP99, 0)} ms, target TTL + ${TARGET_EXPIRY_EXTRA_MS} ms; ${hubExp.arrived}/${hubExp.sessions} events);
rows written per steady-state heartbeat ${status(rowsPerBeat < TARGET_ROWS_PER_BEAT)} (${num(rowsPerBeat, 4)}, target < ${TARGET_ROWS_PER_BEAT}).

### Machine

- CPU: ${machine.cpuModel}, ${machine.cores} cores available to Node; ${machine.memoryGiB} GiB RAM; ${machine.os}
- Node ${machine.node}; ${machine.workerd}; miniflare ${packageVersion(ctx.root, "miniflare")}; esbuild ${esbuildVersion()} (wrangler's);
  redis-server ${input.redisVersion} (Debian package); ws ${packageVersion(ctx.root, "ws")}
- Load average (1 / 5 / 15 min): ${input.loadBefore} before, ${input.loadAfter} after. Everything — load generator,
  workerd, Miniflare's host, Redis, the Node servers, WebSocket clients — shares these cores, and other jobs may be
  running too: compare rows of one run with each other.${ctx.note ? `\n- Note: ${ctx.note}` : ""}

### Setup

- **Outpost**: the Worker bundled from the ${input.source}, with wrangler's esbuild and wrangler's settings
  (\`bench/worker-build.ts\`), entry \`bench/workers/hub-stats-entry.js\` = the Worker unchanged plus
  \`GET /__bench/hub-stats\` (the hub's \`stats()\` RPC; bench only). Run in workerd through Miniflare directly
  (\`bench/workerd.ts\`), load sent to workerd's direct socket; Durable Objects, rate limits and vars from
  \`wrangler.toml\`, identity settings from \`test/support/identity.ts\`, ${MEMBERS} extra members. The hub's outbox
  and probe go to a stub origin in the bench process that accepts everything (${input.stubEvents} events delivered).
  Two instances: an **ingest hub** with \`HEARTBEAT_TTL_SECONDS=${INGEST_TTL_S}\` (so a pool of
  ${POOL.toLocaleString("en-US")} sessions cycled round-robin never lapses between runs) and an **expiry hub** with
  \`HEARTBEAT_TTL_SECONDS=${EXPIRY_TTL_S}\`. Every request carries \`Authorization: Bearer <member access token>\`
  (one token per member, verified once, then from the Worker's cache).
- **Ingest load**: a closed loop of ${CONNECTIONS} keep-alive connections over 127.0.0.1 (\`bench/http-load.ts\`,
  node:http). ${POOL.toLocaleString("en-US")} distinct session ids (${MEMBERS} members × ${SESSIONS_PER_MEMBER}; a
  member may hold 1,000 live sessions) are cycled in order, so a session is beaten again only after the whole pool
  and the 1/s per-session limit is not what is measured. The generator also holds any request whose sessions were sent
  less than ${MIN_GAP_MS} ms before (reported under "responses" when it happens — the pool, not the hub, then set the
  rate), and any 429 or "rejected" would show there too. Bodies
  repeat each session's details (hostname, pid, name), as a steady agent's do. Sessions are created first
  (batches of 100); then every target gets ${input.warmupSec} s of warm-up, then ${input.rounds} measured runs of
  ${input.durationSec} s each, targets interleaved round by round with the order rotated each round (the ${SLOW_LOOKUP_MS} ms row,
  which leaves the CPU idle, is measured on its own after the others). "heartbeats/s" counts accepted heartbeats (for batches, the
  \`"accepted"\` entries in 200 responses).
- **Older design** (\`bench/redis-heartbeat-host.ts\`, one Node process each): \`POST /api/heartbeat/:id\` → \`GET
  /auth/v1/user\` on a Node stand-in on loopback (\`bench/user-lookup-host.ts\`, answering after 0 ms or
  ${SLOW_LOOKUP_MS} ms — the 75th-percentile latency the issue reports for Supabase's endpoint; the stand-in does not
  verify the token or read a database, so it is cheaper than the real service) → \`SET presence:<user>:<id> <body> EX
  15\` on redis-server (\`bench/resp.ts\`, one pipelined connection). Same load generator, same ${CONNECTIONS}
  connections, same bodies and tokens.
- **Server CPU µs / heartbeat**: user + system CPU (\`/proc/<pid>/stat\`, 10 ms ticks) of the server-side processes
  over the measured runs ÷ accepted heartbeats: workerd + Miniflare's host for Outpost (workerd runs the Worker, the
  hub and the HTTP stack), Node server + lookup stand-in + redis-server for the older design.
- **Redis**: \`redis-server ${input.redisArgs.join(" ")}\` (every other setting at its default, so \`hz 10\`).

### Heartbeat ingest into one hub

${ingestTable}

### Rows written per heartbeat (hub \`stats()\`)

Deltas of the hub's own counters (\`rowsWritten\` sums SQLite's \`rowsWritten\` over every statement; alarm sets are
\`setAlarm\` calls) around each measured run. "heartbeats (hub)" counts every session the hub was asked about.

${rowsTable}

A heartbeat that only renews a live session writes nothing: its time is kept in the hub's memory, and the one alarm
is moved only when a session comes online. The naive design — write the session row and \`setAlarm\` on every beat —
is 1 row + 1 alarm set per heartbeat by construction. The hub's final counters: ${input.ingestFinal.heartbeats} heartbeats,
${input.ingestFinal.rowsWritten} rows written, ${input.ingestFinal.alarmSets} alarm sets, ${input.ingestFinal.alarmRuns} alarm runs, ${input.ingestFinal.live} live sessions.

### Time from TTL lapse to the event at a subscriber

${EXPIRY_SESSIONS} sessions (hub) or keys (Redis) written once each, spread evenly over ${EXPIRY_SPREAD_MS / 1000} s,
then left to lapse; one subscriber — a presence WebSocket (owner token) on the expiry hub, or a Redis connection
\`SUBSCRIBE __keyevent@0__:expired\`. The lapse is the hub's own \`expiresAt\` from the heartbeat's response, and for
Redis \`PEXPIRETIME\` right after \`SET … EX ${EXPIRY_TTL_S}\`; arrival is the subscriber's clock (same machine). An
event counts if it arrives within 2 × TTL of its lapse; percentiles are over the events that arrived.

${expiryTable}

- Hub, split by the event's \`at\` (when the hub's alarm handled the expiry): lapse → alarm handled it p50
  ${ms(hubExp.handledMs ?? [], 50)} ms / p99 ${ms(hubExp.handledMs ?? [], 99)} ms; handled → arrived at the socket p50
  ${ms(hubExp.deliveryMs ?? [], 50)} ms / p99 ${ms(hubExp.deliveryMs ?? [], 99)} ms. Over the whole test the hub ran ${input.hubExpiryStats.alarmRuns} alarms
  (${input.hubExpiryStats.alarmSets} alarm sets) for these ${EXPIRY_SESSIONS} sessions: delivering their \`session_online\` events to the
  origin, then their expiries and those events.
- Redis sends \`expired\` when it deletes the key, not when its TTL runs out: when a client touches the key, or when
  the active expiry cycle finds it. At the default \`hz 10\` that cycle runs 10 times a second, checks a small batch
  of keys that carry a TTL (20 by default), and carries on only while more than 10 % of the batch had lapsed. Alone,
  about 10 of the 200 keys are lapsed at any moment, so a cycle usually checks one batch and stops, and a lapsed key
  waits for the cycle to come round to it (200 keys ÷ 20 per cycle ÷ 10 cycles/s: up to about a second). Among
  ${UNRELATED_KEYS.toLocaleString("en-US")} keys with long TTLs the lapsed ones are a fraction of a percent of every batch, the cycle
  stops after one batch each time, and going through all of them takes minutes: the events come when a client
  happens to read the key, or much later. ${input.expiry[2]?.note ?? ""}.

### Event fan-out to ${fan.sockets.toLocaleString("en-US")} presence sockets

${fan.sockets} WebSockets on \`/api/presence/ws\` (owner token, hub otherwise empty; opened in ${num(fan.openMs / 1000, 1)} s,
the hub counted ${fan.watchersSeen} watchers), all in the bench's Node process (\`ws\`). Each of ${fan.triggers} triggers is
a heartbeat for a new session (\`session_online\`), timed from just before the POST is sent (so it includes the
Worker, the hub's write and the broadcast) to each socket's \`message\` event; the next trigger waits until all
sockets have it (and the session has been ended).

${table(
  ["Measure", "p50 ms", "p99 ms", "max ms", "samples"],
  [
    [
      "Until all sockets had the event (per trigger)",
      ms(fan.allGotItMs, 50),
      ms(fan.allGotItMs, 99),
      num(Math.max(...fan.allGotItMs), 1),
      String(fan.allGotItMs.length),
    ],
    [
      "Per-socket latency (per socket and trigger)",
      ms(fan.perSocketMs, 50),
      ms(fan.perSocketMs, 99),
      num(Math.max(...fan.perSocketMs), 1),
      String(fan.perSocketMs.length),
    ],
  ],
  "lrrrr",
)}

Missing deliveries: ${fan.missing}. The spread between the first and last socket is mostly the receiving side: one Node
process parses ${fan.sockets} frames in turn, on a machine whose 2 cores it shares with workerd.

### Against the targets

${table(
  ["Metric", "Target", "Measured", "Status", "Older design, this run"],
  [
    [
      "Heartbeats/s into one hub (single-session requests)",
      `≥ ${TARGET_HEARTBEATS_PER_SEC.toLocaleString("en-US")}/s`,
      `${num(single.unitsPerSec, 0)}/s`,
      status(single.unitsPerSec >= TARGET_HEARTBEATS_PER_SEC),
      `${num(get("redisFast").unitsPerSec, 0)}/s (lookup 0 ms), ${num(get("redisSlow").unitsPerSec, 0)}/s (lookup ${SLOW_LOOKUP_MS} ms)`,
    ],
    [
      `Heartbeats/s into one hub (batches of ${BATCH})`,
      `≥ ${TARGET_HEARTBEATS_PER_SEC.toLocaleString("en-US")}/s`,
      `${num(batch.unitsPerSec, 0)}/s`,
      status(batch.unitsPerSec >= TARGET_HEARTBEATS_PER_SEC),
      "—",
    ],
    [
      "Expiry: p99 from lapse to event (TTL 3 s)",
      `< TTL + ${TARGET_EXPIRY_EXTRA_MS} ms`,
      `TTL + ${num(hubP99, 0)} ms (${hubExp.arrived}/${hubExp.sessions} events)`,
      status(hubExp.arrived === hubExp.sessions && hubP99 < TARGET_EXPIRY_EXTRA_MS),
      input.expiry
        .slice(1)
        .map((e) => `${e.arrived}/${e.sessions} events${e.latencyMs.length > 0 ? `, p99 TTL + ${num(percentile(e.latencyMs, 99), 0)} ms` : ""}`)
        .join("; "),
    ],
    [
      "Rows written per steady-state heartbeat",
      `< ${TARGET_ROWS_PER_BEAT}`,
      num(rowsPerBeat, 4),
      status(rowsPerBeat < TARGET_ROWS_PER_BEAT),
      "1 Redis write per heartbeat (naive hub: 1 row + 1 alarm set)",
    ],
    ["Fan-out to 1,000 sockets: all delivered, p99", "—", `${ms(fan.allGotItMs, 99)} ms`, "—", "—"],
  ],
  "llrll",
)}

### Caveats

- Local workerd is not Cloudflare: here the Worker, the hub and its SQLite share one process and two shared cores
  with the load generator; in production the Worker runs near each client, the hub in one location, each write waits
  for replication before the output gate releases the response, and Cloudflare documents a soft limit of about
  1,000 requests per second per Durable Object — batching (one request, one RPC per process for many sessions) is the
  way past it.
- Miniflare's host parses each request's log line; it is counted in Outpost's CPU column (it would not exist in
  production).
`;
}
