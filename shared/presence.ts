// The presence wire contract: what agents send (HTTP heartbeat routes and the agent WebSocket alike), its limits and
// the one parser for each part, used by the Worker for HTTP bodies and by the hub for socket messages.
import { OutpostError } from "./errors.ts";
import { stringField } from "./fields.ts";
import type { ActiveStatus, SessionMeta } from "./api-types.ts";
import { HOSTNAME_MAX, SESSION_ID_PATTERN, SESSION_NAME_MAX } from "./limits.ts";

/** A heartbeat after validation: absent fields leave the stored values alone. */
export interface HeartbeatInput {
  id: string;
  pid?: number;
  hostname?: string;
  /** Epoch milliseconds. */
  startedAt?: number;
  status?: ActiveStatus;
  name?: string;
  meta?: SessionMeta;
}

/** What an end report says about the exit; both optional. */
export interface ExitReport {
  exitCode?: number;
  reason?: string;
}

/** Largest heartbeat body (and largest entry of a batch); a batch as a whole may be larger. */
export const HEARTBEAT_BODY_CAP = 8 * 1024;
export const BATCH_BODY_CAP = 64 * 1024;
const MAX_BATCH = 100;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;
const EPOCH_MS_MIN = Date.UTC(2000, 0, 1);
const DAY_MS = 24 * 60 * 60 * 1000;

function bad(message: string): OutpostError {
  return new OutpostError("BAD_REQUEST", message);
}

export function byteLength(text: string): number {
  return new TextEncoder().encode(text).byteLength;
}

export function sessionId(raw: unknown, where = "The session id"): string {
  if (typeof raw !== "string" || !SESSION_ID_PATTERN.test(raw)) {
    throw bad(`${where} must be 1 to 128 characters from A-Z a-z 0-9 . _ : -`);
  }
  return raw;
}

function present(fields: Record<string, unknown>, name: string): boolean {
  return fields[name] !== undefined && fields[name] !== null;
}

/** Every field is checked before anything reaches the hub; unknown fields are ignored so newer clients keep working. */
export function parseHeartbeat(fields: Record<string, unknown>, id: string, now: number, where = ""): HeartbeatInput {
  const input: HeartbeatInput = { id };
  if (present(fields, "pid")) {
    const pid = fields.pid;
    if (typeof pid !== "number" || !Number.isSafeInteger(pid) || pid < 0 || pid > 0xffffffff) {
      throw bad(`${where}"pid" must be a non-negative integer.`);
    }
    input.pid = pid;
  }
  if (present(fields, "hostname")) input.hostname = stringField(fields, "hostname", HOSTNAME_MAX);
  if (present(fields, "name")) input.name = stringField(fields, "name", SESSION_NAME_MAX);
  if (present(fields, "startedAt")) input.startedAt = startedAt(fields.startedAt, now, where);
  if (present(fields, "status")) {
    if (fields.status !== "working" && fields.status !== "idle") throw bad(`${where}"status" must be "working" or "idle".`);
    input.status = fields.status;
  }
  if (present(fields, "meta")) {
    const meta = fields.meta;
    if (typeof meta !== "object" || Array.isArray(meta) || byteLength(JSON.stringify(meta)) > HEARTBEAT_BODY_CAP) {
      throw bad(`${where}"meta" must be a JSON object of at most ${HEARTBEAT_BODY_CAP} bytes.`);
    }
    input.meta = meta as SessionMeta;
  }
  return input;
}

function startedAt(value: unknown, now: number, where: string): number {
  let ms = NaN;
  if (typeof value === "string" && ISO_TIME.test(value)) ms = Date.parse(value);
  else if (typeof value === "number" && Number.isSafeInteger(value)) ms = value;
  // Epoch seconds by mistake land in 1970 and are refused here rather than shown as a 55-year-old session.
  if (!Number.isFinite(ms) || ms < EPOCH_MS_MIN || ms > now + DAY_MS) {
    throw bad(`${where}"startedAt" must be an ISO 8601 time or epoch milliseconds, not in the future.`);
  }
  return ms;
}

/** The `sessions` array of a batch: present, 1 to MAX_BATCH entries. */
export function batchList(list: unknown): unknown[] {
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_BATCH) {
    throw bad(`"sessions" must be an array of 1 to ${MAX_BATCH} heartbeats.`);
  }
  return list;
}

/** One entry of a batch; `seen` catches a session named twice. Throws 400 (or 413 for an entry over the cap). */
export function parseBatchEntry(entry: unknown, i: number, now: number, seen: Set<string>): HeartbeatInput {
  const where = `sessions[${i}]: `;
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) throw bad(`${where}each heartbeat must be a JSON object.`);
  if (byteLength(JSON.stringify(entry)) > HEARTBEAT_BODY_CAP) {
    throw new OutpostError("PAYLOAD_TOO_LARGE", `${where}a heartbeat may be at most ${HEARTBEAT_BODY_CAP} bytes.`);
  }
  const id = sessionId((entry as Record<string, unknown>).id, `${where}"id"`);
  if (seen.has(id)) throw bad(`${where}session "${id}" appears twice.`);
  seen.add(id);
  return parseHeartbeat(entry as Record<string, unknown>, id, now, where);
}

/** The optional exit code and reason of an end report. */
export function parseExit(fields: Record<string, unknown>): ExitReport {
  const exit: ExitReport = {};
  if (present(fields, "exitCode")) {
    const code = fields.exitCode;
    if (typeof code !== "number" || !Number.isSafeInteger(code) || code < -0x80000000 || code > 0xffffffff) {
      throw bad('"exitCode" must be an integer.');
    }
    exit.exitCode = code;
  }
  if (present(fields, "reason")) exit.reason = stringField(fields, "reason", 200);
  return exit;
}
