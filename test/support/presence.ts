// Presence seen from outside the edge for end-to-end tests: a phone's presence WebSocket, what the origin stored, polling.
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import WebSocket from "ws";
import { bearer } from "./http-client.ts";

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` every 50 ms until it returns something other than undefined; fails after `timeoutMs`. */
export async function until<T>(check: () => T | undefined | Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** One message of GET /api/presence/ws, as the phone receives it. */
export interface PresenceMessage {
  type: "snapshot" | "event";
  seq: number;
  event?: { id: string; seq: number; type: string; sessionId: string | null; at: string; data: Record<string, unknown> };
  /** When this process received it (Date.now()). */
  receivedAt: number;
}

export interface Subscriber {
  ws: WebSocket;
  messages: PresenceMessage[];
  /** The events received so far, in arrival order. */
  events(): NonNullable<PresenceMessage["event"]>[];
  close(): void;
}

/** Opens the presence WebSocket as a phone would (`query` e.g. "?after=12" to resume) and records every message. */
export function subscribe(edgeUrl: string, token: string, query = ""): Promise<Subscriber> {
  const ws = new WebSocket(`${edgeUrl.replace(/^http/, "ws")}/api/presence/ws${query}`, { headers: bearer(token), handshakeTimeout: 10_000 });
  const messages: PresenceMessage[] = [];
  ws.on("message", (data) => messages.push({ ...(JSON.parse(data.toString()) as Omit<PresenceMessage, "receivedAt">), receivedAt: Date.now() }));
  const subscriber: Subscriber = {
    ws,
    messages,
    events: () => messages.flatMap((m) => (m.type === "event" && m.event ? [m.event] : [])),
    close: () => ws.terminate(),
  };
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve(subscriber));
    ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.once("error", reject);
  });
}

/** A row of the origin's edge_events table: one per event id it applied (it skips ids it has seen). */
export interface OriginEvent {
  id: string;
  seq: number;
  type: string;
  session_id: string | null;
  at: number;
  received_at: number;
}

/** What the origin with this data directory has applied, in the order it stored it (read from its WAL-mode database). */
export function originEvents(dataDir: string): OriginEvent[] {
  const db = new DatabaseSync(join(dataDir, "origin.db"), { readOnly: true });
  try {
    return db.prepare("SELECT id, seq, type, session_id, at, received_at FROM edge_events ORDER BY rowid").all() as unknown as OriginEvent[];
  } finally {
    db.close();
  }
}

/** A JSON request to the edge with a bearer token; resolves with the status and the parsed body. */
export async function callEdge<T = Record<string, unknown>>(edgeUrl: string, token: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${edgeUrl}${path}`, {
    method,
    headers: { ...bearer(token), ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as T };
}
