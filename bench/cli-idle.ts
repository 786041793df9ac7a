// Idle cost of `outpost run` around a sleeping child: the CLI process's RSS and CPU time over 60 s, against the real
// local stack (edge in workerd, origin). A module for bench/run.ts (`cliIdle`), and runnable alone:
//   node bench/cli-idle.ts [--duration 60] [--no-write]
// which rewrites only its own section of BENCHMARKS.md (between the bench:cli-idle markers).
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { buildCli } from "../cli/build.ts";
import { startStack } from "../test/support/stack.ts";

/** What this benchmark needs of bench/run.ts's BenchContext (kept structural so the module stands alone). */
export interface IdleBenchContext {
  root: string;
  command: string;
  durationSec?: number;
  note?: string;
  log(message: string): void;
}

const SECTION = "cli-idle";
const DEFAULT_DURATION_SEC = 60;
const WARMUP_SEC = 5;
/** Targets from the issue. */
const TARGET_RSS_MB = 60;
const TARGET_CPU_PCT = 0.2;

interface Sample {
  rssKb: number;
  cpuTicks: number;
}

function readProc(pid: number): Sample {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rssKb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
  // /proc/<pid>/stat: fields after the ")" of the command name; utime and stime are fields 14 and 15.
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const cpuTicks = Number(fields[11]) + Number(fields[12]);
  return { rssKb, cpuTicks };
}

function peakRssKb(pid: number): number {
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mb = (kb: number) => kb / 1024;

interface Measured {
  label: string;
  meanKb: number;
  maxKb: number;
  peakKb: number;
  cpuSec: number;
  cpuPct: number;
  wallSec: number;
  beats: number;
}

/** Runs `outpost run -- sleep` against `edgeUrl` and measures the outpost process over the window. */
async function measure(
  label: string,
  entry: string,
  edgeUrl: string,
  token: string,
  env: Record<string, string>,
  durationSec: number,
  ticksPerSec: number,
): Promise<Measured> {
  const child = spawn(
    process.execPath,
    [entry, "run", "--session", `bench-idle-${label}-${process.pid}`, "--", "sleep", String(durationSec + WARMUP_SEC + 30)],
    {
      env: { ...process.env, ...env, OUTPOST_URL: edgeUrl, OUTPOST_TOKEN: token, OUTPOST_DEBUG: "1", NO_COLOR: "1" },
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  let stderr = "";
  child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
  const pid = child.pid!;
  const beatCount = () => (stderr.match(/POST \/api\/heartbeat\/\S+ -> 200/g) ?? []).length;
  try {
    await sleep(WARMUP_SEC * 1000);
    if (beatCount() === 0) throw new Error(`${label}: no heartbeat got through during the warm-up:\n${stderr}`);
    const beatsBefore = beatCount();
    const first = readProc(pid);
    const started = performance.now();
    const rss: number[] = [first.rssKb];
    while (performance.now() - started < durationSec * 1000) {
      await sleep(1000);
      rss.push(readProc(pid).rssKb);
    }
    const last = readProc(pid);
    const wallSec = (performance.now() - started) / 1000;
    const cpuSec = (last.cpuTicks - first.cpuTicks) / ticksPerSec;
    return {
      label,
      meanKb: rss.reduce((a, b) => a + b, 0) / rss.length,
      maxKb: Math.max(...rss),
      peakKb: peakRssKb(pid),
      cpuSec,
      cpuPct: (cpuSec / wallSec) * 100,
      wallSec,
      beats: beatCount() - beatsBefore,
    };
  } finally {
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
  }
}

/** A TLS front for the local edge with a throwaway self-signed certificate, so the https path (TLS loaded) is measured too. */
async function tlsFront(edgeUrl: string, dir: string): Promise<{ url: string; caFile: string; close(): void } | null> {
  const key = join(dir, "key.pem");
  const cert = join(dir, "cert.pem");
  try {
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        key,
        "-out",
        cert,
        "-days",
        "1",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
      ],
      { stdio: "ignore" },
    );
  } catch {
    return null;
  }
  const tls = await import("node:tls");
  const net = await import("node:net");
  const target = new URL(edgeUrl);
  const server = tls.createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    const drop = () => (client.destroy(), upstream.destroy());
    client.on("error", drop).pipe(upstream).on("error", drop).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as import("node:net").AddressInfo;
  return { url: `https://127.0.0.1:${port}`, caFile: cert, close: () => server.close() };
}

export async function cliIdle(ctx: IdleBenchContext): Promise<string> {
  if (process.platform !== "linux") throw new Error("cli-idle reads /proc: Linux only");
  const durationSec = ctx.durationSec ?? DEFAULT_DURATION_SEC;
  const ticksPerSec = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  ctx.log("building the CLI");
  const entry = await buildCli(join(ctx.root, "test-output", "bench-cli"));
  ctx.log("starting the stack (origin + Worker in workerd)");
  const stack = await startStack();
  const tmp = mkdtempSync(join(os.tmpdir(), "outpost-bench-"));
  const front = await tlsFront(stack.edgeUrl, tmp);
  try {
    const token = await stack.mintToken("owner@example.com");
    ctx.log(
      `two \`outpost run\` processes around \`sleep\` (edge over http${front ? " and over https" : ""}): ${WARMUP_SEC} s warm-up, then ${durationSec} s measured`,
    );
    const runs = await Promise.all([
      measure("http", entry, stack.edgeUrl, token, {}, durationSec, ticksPerSec),
      ...(front ? [measure("https", entry, front.url, token, { NODE_EXTRA_CA_CERTS: front.caFile }, durationSec, ticksPerSec)] : []),
    ]);
    const ok = (pass: boolean) => (pass ? "✅" : "❌");
    const header = ["| Edge | RSS mean | RSS max | RSS peak (VmHWM) | CPU time | Share of one core | Heartbeats |", "|---|---:|---:|---:|---:|---:|---:|"];
    const rows = runs.map(
      (m) =>
        `| ${m.label} | ${mb(m.meanKb).toFixed(1)} MB ${ok(mb(m.maxKb) < TARGET_RSS_MB)} | ${mb(m.maxKb).toFixed(1)} MB | ${mb(m.peakKb).toFixed(1)} MB | ${(m.cpuSec * 1000).toFixed(0)} ms | ${m.cpuPct.toFixed(3)} % ${ok(m.cpuPct < TARGET_CPU_PCT)} | ${m.beats} |`,
    );
    const cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim() ?? os.cpus()[0]?.model ?? "unknown";
    return `## CLI idle cost (\`outpost run\`)

Targets: under ${TARGET_RSS_MB} MB RSS and under ${TARGET_CPU_PCT} % of one core (✅ met, ❌ missed), for the \`outpost\`
process alone (not its child) while it runs \`sleep\` and heartbeats to the local edge (Worker in workerd, default
presence settings: a heartbeat every 10 s). Two runs at once: one to the edge over plain http, one through a local TLS
front with a throwaway certificate${front ? "" : " (skipped: no openssl)"}, as a deployed edge is reached (https loads TLS
and OpenSSL). After ${WARMUP_SEC} s of warm-up, RSS is read from \`/proc/<pid>/status\` every second and CPU time
(user + system, ${1000 / ticksPerSec} ms resolution) from \`/proc/<pid>/stat\` at both ends of a ${runs[0]!.wallSec.toFixed(0)} s window.

${[...header, ...rows].join("\n")}

Run: \`${ctx.command}\` on ${new Date().toISOString().slice(0, 10)}; ${os.availableParallelism()} × ${cpuModel}, Node ${process.version},
${os.type()} ${os.release()}, load average ${os
      .loadavg()
      .map((n) => n.toFixed(2))
      .join(" / ")}.${ctx.note ? `\nNote: ${ctx.note}` : ""}
`;
  } finally {
    front?.close();
    rmSync(tmp, { recursive: true, force: true });
    await stack.stop();
  }
}

/** Replaces this benchmark's section of `file` (or appends it), keeping everything else. */
function writeOwnSection(file: string, markdown: string): void {
  const start = `<!-- bench:${SECTION}:start -->`;
  const end = `<!-- bench:${SECTION}:end -->`;
  const block = `${start}\n${markdown.trim()}\n${end}`;
  const current = existsSync(file) ? readFileSync(file, "utf8") : "# Benchmarks\n";
  const i = current.indexOf(start);
  const j = current.indexOf(end);
  if (i !== -1 && j > i) writeFileSync(file, current.slice(0, i) + block + current.slice(j + end.length));
  else if (i === -1 && j === -1) writeFileSync(file, `${current.trimEnd()}\n\n${block}\n`);
  else throw new Error(`${file}: the ${SECTION} markers are unbalanced; fix them by hand`);
}

if (process.argv[1] && resolve(process.argv[1]) === import.meta.filename) {
  const { values } = parseArgs({
    options: { duration: { type: "string" }, note: { type: "string" }, "no-write": { type: "boolean", default: false } },
  });
  const durationSec = values.duration === undefined ? undefined : Number(values.duration);
  if (durationSec !== undefined && !(durationSec > 0 && durationSec <= 600)) {
    console.error(`--duration must be a number of seconds from 1 to 600 (got ${values.duration})`);
    process.exit(2);
  }
  const root = fileURLToPath(new URL("..", import.meta.url));
  const args = process.argv.slice(2);
  const markdown = await cliIdle({
    root,
    command: `node bench/cli-idle.ts${args.length ? ` ${args.join(" ")}` : ""}`,
    durationSec,
    note: values.note,
    log: (m) => console.log(`[bench] ${m}`),
  });
  if (values["no-write"]) console.log(markdown);
  else {
    writeOwnSection(join(root, "BENCHMARKS.md"), markdown);
    console.log(`[bench] wrote section "${SECTION}" of BENCHMARKS.md`);
  }
  process.exit(0);
}
