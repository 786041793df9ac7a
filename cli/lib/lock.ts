// An exclusive lock file between outpost processes, whose takeover of an abandoned lock cannot let two of them in.
import { randomUUID } from "node:crypto";
import { closeSync, linkSync, openSync, readFileSync, statSync, unlinkSync, utimesSync, writeFileSync } from "node:fs";
import os from "node:os";

/** A holder touches its lock this often; one untouched for STALE_MS belongs to a process that is gone (or frozen). */
const HEARTBEAT_MS = 2_000;
const STALE_MS = 30_000;

/** Who holds a lock: `id` is unique per acquisition (the file's inode and time for a lock without an owner record). */
interface Holder {
  id: string;
  pid: number | null;
  host: string | null;
  mtimeMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

/** The lock's holder, or null when there is no lock (it was released meanwhile). */
function holderOf(lock: string): Holder | null {
  try {
    const stat = statSync(lock);
    let owner: { token?: unknown; pid?: unknown; host?: unknown } = {};
    try {
      owner = JSON.parse(readFileSync(lock, "utf8")) as typeof owner;
    } catch {
      // an empty lock (an older outpost) or one not written yet: known by its inode
    }
    return {
      id: typeof owner.token === "string" ? owner.token : `inode-${stat.ino}-${stat.mtimeMs}`,
      pid: typeof owner.pid === "number" ? owner.pid : null,
      host: typeof owner.host === "string" ? owner.host : null,
      mtimeMs: stat.mtimeMs,
    };
  } catch (err) {
    if (errno(err) === "ENOENT") return null;
    throw err;
  }
}

function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return errno(err) === "ESRCH";
  }
}

/** A holder that is not running on this machine any more, or has not touched its lock for STALE_MS. */
function abandoned(holder: Holder): boolean {
  if (holder.pid !== null && holder.host === os.hostname() && processGone(holder.pid)) return true;
  return Date.now() - holder.mtimeMs > STALE_MS;
}

/**
 * Creates the lock with our owner record in one step (a hard link of a complete file), so no one ever reads it half
 * written; false when it exists. Where hard links are not supported, an exclusive create and a write.
 */
function tryCreate(lock: string, token: string): boolean {
  const record = JSON.stringify({ token, pid: process.pid, host: os.hostname() });
  const tmp = `${lock}.${token}.tmp`;
  writeFileSync(tmp, record, { mode: 0o600, flag: "wx" });
  try {
    linkSync(tmp, lock);
    return true;
  } catch (err) {
    if (errno(err) === "EEXIST") return false;
    if (!["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS"].includes(errno(err) ?? "")) throw err;
  } finally {
    unlinkSync(tmp);
  }
  try {
    writeFileSync(lock, record, { mode: 0o600, flag: "wx" });
    return true;
  } catch (err) {
    if (errno(err) === "EEXIST") return false;
    throw err;
  }
}

/**
 * Removes an abandoned lock, at most once however many processes find it abandoned at the same moment: only the one
 * that creates the takeover marker named after that holder may delete it, and only while the lock still is that
 * holder's. Anyone who comes later finds another holder (or none) and leaves the lock alone.
 */
function takeOver(lock: string, holder: Holder): boolean {
  const marker = `${lock}.${holder.id}.takeover`;
  try {
    closeSync(openSync(marker, "wx", 0o600));
  } catch (err) {
    if (errno(err) !== "EEXIST") throw err;
    // Another process is taking over; its marker outlives it only if it died in these few lines.
    const left = holderOf(marker);
    if (left && Date.now() - left.mtimeMs > STALE_MS) unlinkQuietly(marker);
    return false;
  }
  try {
    if (holderOf(lock)?.id !== holder.id) return false;
    unlinkQuietly(lock);
    return true;
  } finally {
    unlinkQuietly(marker);
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if (errno(err) !== "ENOENT") throw err;
  }
}

/** Runs `fn` holding the lock at `lock`; `onTimeout` makes the error when it stays held by someone else for `waitMs`. */
export async function withFileLock<T>(lock: string, fn: () => Promise<T>, options: { waitMs: number; onTimeout: () => Error }): Promise<T> {
  const token = randomUUID();
  const deadline = Date.now() + options.waitMs;
  while (!tryCreate(lock, token)) {
    const holder = holderOf(lock);
    if (holder && abandoned(holder) && takeOver(lock, holder)) continue;
    if (Date.now() > deadline) throw options.onTimeout();
    await sleep(25 + Math.random() * 75);
  }
  // Touched while held, so a slow holder (a refresh waiting on the network) is never mistaken for a dead one.
  const heartbeat = setInterval(() => {
    const now = new Date();
    if (holderOf(lock)?.id === token) utimesSync(lock, now, now);
  }, HEARTBEAT_MS);
  heartbeat.unref();
  try {
    return await fn();
  } finally {
    clearInterval(heartbeat);
    if (holderOf(lock)?.id === token) unlinkQuietly(lock);
  }
}
