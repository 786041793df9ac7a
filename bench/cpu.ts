// Per-process CPU time from /proc (Linux): CPU-per-request accounting, which other jobs on the machine skew less than req/s.
import { readdirSync, readFileSync } from "node:fs";

/** Clock ticks per second for /proc/<pid>/stat times; 100 on every mainstream Linux build. */
const TICKS_PER_SEC = 100;

/** Fields of /proc/<pid>/stat after the parenthesised command name (which may itself contain spaces). */
function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}

/** User + system CPU milliseconds a process has used so far, or NaN when it cannot be read. */
export function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  if (pid === process.pid) {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1000;
  }
  const fields = statFields(pid);
  // After the name: state(0) ppid(1) ... utime(11) stime(12).
  if (!fields || fields.length < 13) return Number.NaN;
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SEC;
}

/** Direct children of `pid` (e.g. the workerd process Miniflare spawned). */
export function childPids(pid: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return [];
  }
  const children: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(Number(entry));
    if (fields && Number(fields[1]) === pid) children.push(Number(entry));
  }
  return children;
}

/** Snapshot of CPU milliseconds for a set of named processes. */
export function cpuSnapshot(pids: Record<string, number | undefined>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, pid] of Object.entries(pids)) out[name] = cpuMs(pid);
  return out;
}

/** CPU microseconds per request for each process between two snapshots. */
export function cpuPerRequestUs(before: Record<string, number>, after: Record<string, number>, requests: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of Object.keys(before)) {
    out[name] = requests > 0 ? ((after[name]! - before[name]!) * 1000) / requests : Number.NaN;
  }
  return out;
}

/** Summed CPU ms (user + system) of several processes; missing pids count as 0. */
export function cpuTotal(pids: Record<string, number | undefined>): number {
  let total = 0;
  for (const pid of Object.values(pids)) total += cpuMs(pid);
  return total;
}
