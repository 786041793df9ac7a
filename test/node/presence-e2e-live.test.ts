// Presence over real sockets, TTL 2 s: a WebSocket subscriber sees online, expiry within TTL + 1 s of the last beat, ended and failed.
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer } from "../support/http-client.ts";
import { MEMBER, OWNER } from "../support/identity.ts";
import { startStack, type Stack } from "../support/stack.ts";

const TTL_MS = 2_000;

interface Message {
  type: "snapshot" | "event";
  seq: number;
  event?: { seq: number; type: string; sessionId: string | null; at: string; data: Record<string, unknown> };
  /** When this process received it (Date.now()). */
  receivedAt: number;
}

interface Subscriber {
  ws: WebSocket;
  messages: Message[];
  /** The first message from index `from` on that matches, waiting up to `timeoutMs` for it. */
  waitFor(match: (m: Message) => boolean, timeoutMs: number, from?: number): Promise<Message>;
}

let stack: Stack;
let agent: string;
let sub: Subscriber;

function subscribe(url: string, token: string): Promise<Subscriber> {
  const ws = new WebSocket(url.replace(/^http/, "ws"), { headers: bearer(token), handshakeTimeout: 10_000 });
  const messages: Message[] = [];
  const listeners = new Set<() => void>();
  ws.on("message", (data) => {
    messages.push({ ...(JSON.parse(data.toString()) as Omit<Message, "receivedAt">), receivedAt: Date.now() });
    for (const l of listeners) l();
  });
  const waitFor = (match: (m: Message) => boolean, timeoutMs: number, from = 0) =>
    new Promise<Message>((resolve, reject) => {
      const check = () => {
        const found = messages.slice(from).find(match);
        if (!found) return;
        clearTimeout(timer);
        listeners.delete(check);
        resolve(found);
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(messages.map((m) => [m.seq, m.event?.type, m.event?.sessionId]))}`));
      }, timeoutMs);
      listeners.add(check);
      check();
    });
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve({ ws, messages, waitFor }));
    ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.once("error", reject);
  });
}

async function edge(method: string, path: string, body: unknown = {}) {
  const res = await fetch(`${stack.edgeUrl}${path}`, {
    method,
    headers: { ...bearer(agent), "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as { expiresAt?: string }, at: Date.now() };
}

const eventFor = (id: string, type: string) => (m: Message) => m.type === "event" && m.event?.sessionId === id && m.event.type === type;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  stack = await startStack({ vars: { HEARTBEAT_TTL_SECONDS: "2", HEARTBEAT_INTERVAL_SECONDS: "1" } });
  agent = await stack.mintToken(OWNER);
  sub = await subscribe(`${stack.edgeUrl}/api/presence/ws`, await stack.mintToken(MEMBER));
  // A first connection (no `after`) always starts with a snapshot.
  const first = await sub.waitFor(() => true, 5_000);
  expect(first).toMatchObject({ type: "snapshot", seq: expect.any(Number), sessions: expect.any(Array), origin: expect.any(Object) });
  expect(first).not.toHaveProperty("reset");
});

afterAll(async () => {
  sub?.ws.terminate();
  await stack?.stop();
});

describe("a subscriber on /api/presence/ws", () => {
  it("sees session_online on the first heartbeat, then session_expired between expiresAt and expiresAt + 1 s after the last one", async () => {
    const id = "live-quiet";
    const from = sub.messages.length;
    const first = await edge("POST", `/api/heartbeat/${id}`, { status: "working", name: "quiet agent", hostname: "laptop", pid: 4242 });
    expect(first.status).toBe(200);
    const online = await sub.waitFor(eventFor(id, "session_online"), 2_000, from);
    expect(online.event!.data).toMatchObject({ status: "working", name: "quiet agent", hostname: "laptop", pid: 4242, owner: OWNER, alive: true });
    expect(online.receivedAt - first.at).toBeLessThan(1_000);

    // Two more beats a little over the 1/s limit apart: expiry counts from the last one, not the first.
    let last = first;
    for (let i = 0; i < 2; i++) {
      await sleep(1_100);
      last = await edge("POST", `/api/heartbeat/${id}`, {});
      expect(last.status).toBe(200);
    }
    const expiresAt = Date.parse(last.body.expiresAt!);
    expect(expiresAt - last.at).toBeLessThanOrEqual(TTL_MS);
    expect(expiresAt).toBeGreaterThan(Date.parse(first.body.expiresAt!));

    const expired = await sub.waitFor(eventFor(id, "session_expired"), TTL_MS + 3_000, from);
    const latency = expired.receivedAt - expiresAt;
    console.log(`session_expired received ${latency} ms after expiresAt (hub stamped it ${Date.parse(expired.event!.at) - expiresAt} ms after)`);
    expect(Date.parse(expired.event!.at)).toBeGreaterThanOrEqual(expiresAt);
    expect(expired.receivedAt).toBeGreaterThanOrEqual(expiresAt);
    expect(expired.receivedAt).toBeLessThanOrEqual(expiresAt + 1_000);
    expect(expired.event!.data).toMatchObject({ status: "failed", reason: "agent_disconnected", alive: false, expiresAt: null });
    // Nothing but these two events for the session in between (the extra beats changed nothing visible).
    const mine = sub.messages.slice(from).filter((m) => m.event?.sessionId === id);
    expect(mine.map((m) => m.event!.type)).toEqual(["session_online", "session_expired"]);
  });

  it("a clean DELETE gives session_ended at once, well before the TTL", async () => {
    const id = "live-clean";
    const from = sub.messages.length;
    const beat = await edge("POST", `/api/heartbeat/${id}`, { name: "clean agent" });
    expect(beat.status).toBe(200);
    await sub.waitFor(eventFor(id, "session_online"), 2_000, from);
    const del = await edge("DELETE", `/api/heartbeat/${id}`, {});
    expect(del).toMatchObject({ status: 200, body: { status: "removed" } });
    const ended = await sub.waitFor(eventFor(id, "session_ended"), 1_000, from);
    console.log(`session_ended received ${ended.receivedAt - del.at} ms after the DELETE answered`);
    expect(ended.receivedAt - del.at).toBeLessThan(500);
    expect(ended.receivedAt).toBeLessThan(Date.parse(beat.body.expiresAt!));
    expect(ended.event!.data).toMatchObject({ status: "ended", exitCode: null, alive: false });
    // No expiry follows an ended session.
    await sleep(TTL_MS + 500);
    expect(
      sub.messages
        .slice(from)
        .filter((m) => m.event?.sessionId === id)
        .map((m) => m.event!.type),
    ).toEqual(["session_online", "session_ended"]);
  });

  it("DELETE with exitCode 3 gives session_failed carrying the exit code", async () => {
    const id = "live-crash";
    const from = sub.messages.length;
    expect((await edge("POST", `/api/heartbeat/${id}`, { name: "crashing agent" })).status).toBe(200);
    await sub.waitFor(eventFor(id, "session_online"), 2_000, from);
    const del = await edge("DELETE", `/api/heartbeat/${id}`, { exitCode: 3, reason: "crashed" });
    expect(del.status).toBe(200);
    const failed = await sub.waitFor(eventFor(id, "session_failed"), 1_000, from);
    expect(failed.receivedAt - del.at).toBeLessThan(500);
    expect(failed.event!.data).toMatchObject({ status: "failed", exitCode: 3, reason: "crashed", alive: false });
    // A session that has ended stays ended: a late heartbeat for the same id is refused.
    expect((await edge("POST", `/api/heartbeat/${id}`, {})).status).toBe(409);
  });

  it("every event arrived once, with seq increasing by one", () => {
    const seqs = sub.messages.filter((m) => m.type === "event").map((m) => m.seq);
    expect(seqs.length).toBeGreaterThanOrEqual(6);
    expect(seqs).toEqual(seqs.map((_, i) => sub.messages[0]!.seq + 1 + i));
    expect(sub.messages.every((m) => m.type === "snapshot" || m.event!.seq === m.seq)).toBe(true);
  });
});
