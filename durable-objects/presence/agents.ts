// The agents' socket protocol: one hibernatable WebSocket per agent process carries the heartbeats (and end reports)
// of all its sessions. Messages are checked with the same rules as the HTTP routes; answers are per session.
import { SESSION_ENDED, type AckResult, type AckStatus } from "../../shared/api-types.ts";
import { OutpostError } from "../../shared/errors.ts";
import { BATCH_BODY_CAP, batchList, byteLength, parseBatchEntry, parseExit, sessionId, type ExitReport } from "../../shared/presence.ts";
import type { Caller, HeartbeatInput, HeartbeatResult, Refusal } from "./model.ts";

/** The tag of agent sockets; phones' sockets are tagged "watcher", so events go only to them. */
export const AGENT_TAG = "agent";
/** More malformed messages in a row than this close the socket (1008). */
const MAX_MALFORMED = 5;
export const POLICY_VIOLATION = 1008;

/** Who is behind an agent socket; stored with the socket so it survives hibernation. */
export interface Agent {
  sub: string;
  email: string;
  /** When the credential that opened the socket expires, in seconds since the epoch. */
  exp: number;
  deviceId?: string | null;
  role: string;
  /** Malformed messages in a row. */
  malformed?: number;
}

type MessageId = string | number;

type AgentMessage = { type: "heartbeat"; id: MessageId; sessions: unknown[] } | { type: "end"; id: MessageId; sessionId: string; exit: ExitReport };

type Parsed = { ok: true; message: AgentMessage } | { ok: false; id?: MessageId; message: string };

function errorText(err: unknown): string {
  return err instanceof OutpostError ? err.message : "The message could not be read.";
}

/** A message as the hub accepts it, or why not (which changes nothing). Entries of a batch are checked later, one by one. */
function parseAgentMessage(raw: string | ArrayBuffer): Parsed {
  if (typeof raw !== "string") return { ok: false, message: "Messages must be JSON text." };
  if (raw.length > BATCH_BODY_CAP || byteLength(raw) > BATCH_BODY_CAP) return { ok: false, message: `A message may be at most ${BATCH_BODY_CAP} bytes.` };
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch {
    return { ok: false, message: "Messages must be JSON objects." };
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) return { ok: false, message: "Messages must be JSON objects." };
  const fields = data as Record<string, unknown>;
  const id = fields.id;
  const validId = (typeof id === "string" && id.length > 0 && id.length <= 128) || (typeof id === "number" && Number.isSafeInteger(id));
  if (!validId) return { ok: false, message: '"id" must be a string of 1 to 128 characters or an integer.' };
  try {
    if (fields.type === "heartbeat") return { ok: true, message: { type: "heartbeat", id, sessions: batchList(fields.sessions) } };
    if (fields.type === "end") {
      return { ok: true, message: { type: "end", id, sessionId: sessionId(fields.sessionId, '"sessionId"'), exit: parseExit(fields) } };
    }
  } catch (err) {
    return { ok: false, id, message: errorText(err) };
  }
  return { ok: false, id, message: '"type" must be "heartbeat" or "end".' };
}

const STATUS_OF: Record<Refusal["code"], AckStatus> = {
  FORBIDDEN: "forbidden",
  RATE_LIMITED: "rate_limited",
  CONFLICT: "conflict",
  NOT_FOUND: "not_found",
};

/**
 * Answers a heartbeat batch: each entry is checked on its own (a bad one is "invalid" and does not hold up the others),
 * and the valid ones go to `beat` — the hub's one heartbeat path, shared with the HTTP routes.
 */
async function heartbeatAck(
  sessions: unknown[],
  now: number,
  limits: { ttl: number; interval: number },
  beat: (inputs: HeartbeatInput[]) => Promise<HeartbeatResult[]>,
): Promise<AckResult[]> {
  const seen = new Set<string>();
  const inputs: HeartbeatInput[] = [];
  const slots: (AckResult | null)[] = sessions.map((entry, i) => {
    try {
      inputs.push(parseBatchEntry(entry, i, now, seen));
      return null;
    } catch (err) {
      const raw = (entry as { id?: unknown } | null)?.id;
      return {
        id: typeof raw === "string" ? raw : null,
        status: "invalid",
        ttl: limits.ttl,
        expiresAt: null,
        interval: limits.interval,
        message: errorText(err),
      };
    }
  });
  const results = inputs.length > 0 ? await beat(inputs) : [];
  let next = 0;
  return slots.map((slot) => slot ?? ackOf(results[next++]!, limits));
}

function ackOf(
  r: HeartbeatResult | ({ id: string } & ({ ok: true; expiresAt?: number } | ({ ok: false } & Refusal))),
  limits: { ttl: number; interval: number },
): AckResult {
  const base = { id: r.id, ttl: limits.ttl, interval: limits.interval };
  if (r.ok) return { ...base, status: "accepted", expiresAt: r.expiresAt === undefined ? null : new Date(r.expiresAt).toISOString() };
  return { ...base, status: STATUS_OF[r.code], expiresAt: null, message: r.message, ...(r.retryAfter ? { retryAfter: r.retryAfter } : {}) };
}

function callerOf(agent: Agent): Caller {
  return { sub: agent.sub, email: agent.email };
}

/** The hub's RPC an agent's message is answered through, so the socket and the HTTP routes share one path. */
export interface AgentRpc {
  heartbeat(caller: Caller, inputs: HeartbeatInput[]): Promise<HeartbeatResult[]>;
  end(caller: Caller, id: string, exit: ExitReport): Promise<{ ok: true } | ({ ok: false } & Refusal)>;
}

/**
 * Answers one message on an agent's socket: an expired credential closes it, a malformed message gets an error (too
 * many in a row close it), anything else is acked per session.
 */
export async function answerAgent(
  ws: WebSocket,
  message: string | ArrayBuffer,
  now: number,
  limits: { ttl: number; interval: number },
  rpc: AgentRpc,
): Promise<void> {
  const agent = ws.deserializeAttachment() as Agent | null;
  if (!agent || agent.exp * 1000 <= now) return closeQuietly(ws, SESSION_ENDED, "session expired");
  const parsed = parseAgentMessage(message);
  if (!parsed.ok) {
    const malformed = (agent.malformed ?? 0) + 1;
    ws.serializeAttachment({ ...agent, malformed });
    sendQuietly(ws, { type: "error", ...(parsed.id !== undefined ? { id: parsed.id } : {}), message: parsed.message });
    if (malformed > MAX_MALFORMED) closeQuietly(ws, POLICY_VIOLATION, "too many malformed messages");
    return;
  }
  if (agent.malformed) ws.serializeAttachment({ ...agent, malformed: 0 });
  const caller = callerOf(agent);
  const msg = parsed.message;
  const results =
    msg.type === "heartbeat"
      ? await heartbeatAck(msg.sessions, now, limits, (inputs) => rpc.heartbeat(caller, inputs))
      : [ackOf({ id: msg.sessionId, ...(await rpc.end(caller, msg.sessionId, msg.exit)) }, limits)];
  sendQuietly(ws, { type: "ack", id: msg.id, results });
}

function sendQuietly(ws: WebSocket, message: unknown): void {
  try {
    ws.send(JSON.stringify(message));
  } catch {
    // Closing; the runtime reports the close separately.
  }
}

/** Closes a socket, ignoring one that is closing already. */
export function closeQuietly(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, reason);
  } catch {
    // Already closing.
  }
}
