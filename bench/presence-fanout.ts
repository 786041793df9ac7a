// Presence benchmark, fan-out: one event timed to each of 1,000 presence WebSockets.
import WebSocket from "ws";
import { FANOUT_SOCKETS, FANOUT_TRIGGERS, hubStats, sleep } from "./presence-shared.ts";
import { num } from "./report.ts";
import type { RunningWorker } from "./workerd.ts";

export interface FanoutResult {
  sockets: number;
  openMs: number;
  triggers: number;
  /** Per trigger: ms until the last of the sockets had the event. */
  allGotItMs: number[];
  /** Per socket and trigger: ms from sending the trigger to this socket receiving the event. */
  perSocketMs: number[];
  missing: number;
  watchersSeen: number;
}

export async function fanout(worker: RunningWorker, ownerToken: string, memberToken: string, log: (m: string) => void): Promise<FanoutResult> {
  const wsUrl = `${worker.directUrl.replace(/^http/, "ws")}/api/presence/ws`;
  const sockets: WebSocket[] = [];
  let current: { id: string; t0: number; arrivals: number[] } | null = null;
  const openStarted = performance.now();
  try {
    for (let i = 0; i < FANOUT_SOCKETS; i += 50) {
      const batch = Array.from({ length: Math.min(50, FANOUT_SOCKETS - i) }, () => {
        const ws = new WebSocket(wsUrl, { headers: { authorization: `Bearer ${ownerToken}` }, perMessageDeflate: false });
        sockets.push(ws);
        return new Promise<void>((resolve, reject) => {
          ws.once("message", () => resolve());
          ws.once("error", reject);
          ws.once("unexpected-response", (_req, res) => reject(new Error(`WebSocket upgrade answered ${res.statusCode}`)));
        });
      });
      await Promise.all(batch);
    }
    const openMs = performance.now() - openStarted;
    for (const ws of sockets) {
      ws.on("message", (data: Buffer) => {
        const t = performance.now();
        if (current && data.includes(current.id) && data.includes("session_online")) current.arrivals.push(t - current.t0);
      });
    }
    const watchersSeen = (await hubStats(worker)).watchers;
    log(`fan-out: ${sockets.length} sockets open in ${num(openMs, 0)} ms (hub counts ${watchersSeen} watchers)`);
    const allGotItMs: number[] = [];
    const perSocketMs: number[] = [];
    let missing = 0;
    for (let t = 0; t < FANOUT_TRIGGERS; t++) {
      const id = `fanout-${t}-${Date.now()}`;
      current = { id, t0: performance.now(), arrivals: [] };
      const res = await fetch(`${worker.directUrl}/api/heartbeat/${id}`, {
        method: "POST",
        headers: { authorization: `Bearer ${memberToken}`, "content-type": "application/json" },
        body: JSON.stringify({ hostname: "bench-laptop", name: "fan-out trigger" }),
      });
      await res.text();
      if (!res.ok) throw new Error(`fan-out trigger answered ${res.status}`);
      const deadline = performance.now() + 5000;
      while (current.arrivals.length < sockets.length && performance.now() < deadline) await sleep(2);
      const got = current.arrivals;
      missing += sockets.length - got.length;
      allGotItMs.push(got.length === sockets.length ? Math.max(...got) : Number.NaN);
      perSocketMs.push(...got);
      current = null;
      // Each trigger's session is ended so the next runs alone (its own event is not timed).
      await (await fetch(`${worker.directUrl}/api/heartbeat/${id}`, { method: "DELETE", headers: { authorization: `Bearer ${memberToken}` } })).text();
      await sleep(150);
    }
    return { sockets: sockets.length, openMs, triggers: FANOUT_TRIGGERS, allGotItMs, perSocketMs, missing, watchersSeen };
  } finally {
    await Promise.all(
      sockets.map(
        (ws) =>
          new Promise<void>((resolve) => {
            if (ws.readyState === WebSocket.CLOSED) return resolve();
            const timer = setTimeout(() => {
              ws.terminate();
              resolve();
            }, 2000);
            ws.once("close", () => {
              clearTimeout(timer);
              resolve();
            });
            ws.close(1000);
          }),
      ),
    );
  }
}
