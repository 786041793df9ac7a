// Presence WebSocket resume over real sockets: ?after=<seq> replays every missed event once, in order, before live ones; bad values are handled.
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer } from "../support/http-client.ts";
import { MEMBER, OWNER } from "../support/identity.ts";
import { startStack, type Stack } from "../support/stack.ts";
import { openWebSocket } from "../support/ws-client.ts";

interface Message {
  type: "snapshot" | "event";
  seq: number;
  reset?: boolean;
  sessions?: { id: string; status: string }[];
  event?: { seq: number; type: string; sessionId: string | null };
}

interface Subscriber {
  ws: WebSocket;
  messages: Message[];
  /** Resolves once some message matches (checked over everything received so far, then as messages arrive). */
  waitFor(match: (m: Message) => boolean, timeoutMs?: number): Promise<Message>;
  close(): Promise<void>;
}

let stack: Stack;
let agent: string;
let watcher: string;

function subscribe(query = ""): Promise<Subscriber> {
  const ws = new WebSocket(`${stack.edgeUrl.replace(/^http/, "ws")}/api/presence/ws${query}`, { headers: bearer(watcher), handshakeTimeout: 10_000 });
  const messages: Message[] = [];
  const listeners = new Set<() => void>();
  ws.on("message", (data) => {
    messages.push(JSON.parse(data.toString()) as Message);
    for (const l of listeners) l();
  });
  const waitFor = (match: (m: Message) => boolean, timeoutMs = 5_000) =>
    new Promise<Message>((resolve, reject) => {
      const check = () => {
        const found = messages.find(match);
        if (!found) return;
        clearTimeout(timer);
        listeners.delete(check);
        resolve(found);
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(messages.map((m) => [m.type, m.seq, m.event?.type]))}`));
      }, timeoutMs);
      listeners.add(check);
      check();
    });
  const close = () =>
    new Promise<void>((resolve) => {
      if (ws.readyState === WebSocket.CLOSED) return resolve();
      ws.once("close", () => resolve());
      ws.close(1000);
    });
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve({ ws, messages, waitFor, close }));
    ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.once("error", reject);
  });
}

async function edge(method: string, path: string, body: unknown = {}) {
  const res = await fetch(`${stack.edgeUrl}${path}`, { method, headers: { ...bearer(agent), "content-type": "application/json" }, body: JSON.stringify(body) });
  expect(res.status).toBe(200);
  await res.body?.cancel();
}

async function currentSeq(): Promise<number> {
  const res = await fetch(`${stack.edgeUrl}/api/presence`, { headers: bearer(watcher) });
  return ((await res.json()) as { seq: number }).seq;
}

const isEvent = (id: string, type: string) => (m: Message) => m.type === "event" && m.event?.sessionId === id && m.event.type === type;

beforeAll(async () => {
  stack = await startStack({ vars: { HEARTBEAT_TTL_SECONDS: "2", HEARTBEAT_INTERVAL_SECONDS: "1" } });
  agent = await stack.mintToken(OWNER);
  watcher = await stack.mintToken(MEMBER);
});

afterAll(() => stack?.stop());

describe("resuming with ?after=<seq>", () => {
  it("replays every event missed while disconnected exactly once, in seq order, before live ones", async () => {
    const first = await subscribe();
    await edge("POST", "/api/heartbeat/resume-a", { name: "a" });
    await first.waitFor(isEvent("resume-a", "session_online"));
    const lastSeen = first.messages.at(-1)!.seq;
    await first.close();

    // While nobody listens: two new sessions, both ended, and the first one failed (nothing is left to expire).
    await edge("POST", "/api/heartbeat/resume-b", { name: "b" });
    await edge("POST", "/api/heartbeat/resume-c", { name: "c" });
    await edge("DELETE", "/api/heartbeat/resume-b", {});
    await edge("DELETE", "/api/heartbeat/resume-a", { exitCode: 1 });
    await edge("DELETE", "/api/heartbeat/resume-c", { exitCode: 0 });
    const missedUpTo = await currentSeq();
    expect(missedUpTo).toBeGreaterThanOrEqual(lastSeen + 5);

    const again = await subscribe(`?after=${lastSeen}`);
    await again.waitFor((m) => m.seq >= missedUpTo);
    // Then a live event, which must come after every replayed one.
    await edge("POST", "/api/heartbeat/resume-d", { name: "d" });
    const live = await again.waitFor(isEvent("resume-d", "session_online"));

    // No snapshot: the missed events themselves, each once, seq by seq, the live one right after them.
    const upToLive = again.messages.slice(0, again.messages.indexOf(live) + 1);
    expect(upToLive.every((m) => m.type === "event" && m.event!.seq === m.seq)).toBe(true);
    expect(upToLive.map((m) => m.seq)).toEqual(Array.from({ length: live.seq - lastSeen }, (_, i) => lastSeen + 1 + i));
    const ours = upToLive.filter((m) => m.event!.sessionId?.startsWith("resume-")).map((m) => `${m.event!.sessionId}:${m.event!.type}`);
    expect(ours).toEqual([
      "resume-b:session_online",
      "resume-c:session_online",
      "resume-b:session_ended",
      "resume-a:session_failed",
      "resume-c:session_ended",
      "resume-d:session_online",
    ]);
    await again.close();
    await edge("DELETE", "/api/heartbeat/resume-d", {});
  });

  it("after=0 replays the whole log from seq 1 (nothing has been pruned yet)", async () => {
    const upTo = await currentSeq();
    const all = await subscribe("?after=0");
    await all.waitFor((m) => m.seq >= upTo);
    expect(all.messages.slice(0, upTo).map((m) => [m.type, m.seq])).toEqual(Array.from({ length: upTo }, (_, i) => ["event", i + 1]));
    await all.close();
  });

  it("after equal to the current seq sends nothing at first, then live events", async () => {
    const upTo = await currentSeq();
    const caughtUp = await subscribe(`?after=${upTo}`);
    await new Promise((r) => setTimeout(r, 300));
    await edge("POST", "/api/heartbeat/resume-e", {});
    const live = await caughtUp.waitFor(isEvent("resume-e", "session_online"));
    // No snapshot and no replay: only events issued after `upTo`, starting right after it.
    expect(caughtUp.messages.every((m) => m.type === "event")).toBe(true);
    const seqs = caughtUp.messages.map((m) => m.seq);
    expect(seqs).toEqual(Array.from({ length: live.seq - upTo }, (_, i) => upTo + 1 + i));
    await caughtUp.close();
  });

  it("an after beyond the current seq (a seq this hub never issued) gets a reset snapshot, then live events", async () => {
    const upTo = await currentSeq();
    const ahead = await subscribe(`?after=${upTo + 1000}`);
    const snapshot = await ahead.waitFor(() => true);
    expect(snapshot).toMatchObject({ type: "snapshot", reset: true, seq: upTo });
    expect(snapshot.sessions!.map((s) => s.id)).toEqual(expect.arrayContaining(["resume-a", "resume-b", "resume-c", "resume-d", "resume-e"]));
    expect(snapshot.sessions!.find((s) => s.id === "resume-b")!.status).toBe("ended");
    await edge("DELETE", "/api/heartbeat/resume-e", {});
    const live = await ahead.waitFor(isEvent("resume-e", "session_ended"));
    expect(live.seq).toBeGreaterThan(upTo);
    expect(ahead.messages.slice(1).every((m) => m.type === "event" && m.seq > upTo)).toBe(true);
    await ahead.close();
  });

  it("an after that is not a sequence number is refused with 400 before the upgrade", async () => {
    for (const after of ["abc", "-1", "1.5", "", "1234567890123456"]) {
      const res = await openWebSocket(`${stack.edgeUrl}/api/presence/ws?after=${encodeURIComponent(after)}`, { bearer: watcher });
      expect(res.ok, `after=${after}`).toBe(false);
      if (res.ok) continue;
      expect(res.status, `after=${after}`).toBe(400);
      expect(JSON.parse(res.body)).toMatchObject({ error: { code: "BAD_REQUEST" } });
    }
  });
});
