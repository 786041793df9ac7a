// `outpost run` heartbeats over the agent WebSocket: after the socket opens, no more heartbeat requests reach the edge
// (a recording TCP proxy in front of it sees every HTTP request line), while the hub sees the session live and beating;
// when the socket drops, the beat falls back to HTTP and the socket comes back.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack, type Stack } from "../../support/stack.ts";
import { cliEntry, startCli, tcpForwarder, tempDir, waitUntil } from "./helpers.ts";

const INTERVAL_S = 1;
const PRESENCE_VARS = { HEARTBEAT_INTERVAL_SECONDS: String(INTERVAL_S), HEARTBEAT_TTL_SECONDS: "4" };

let stack: Stack;
let token: string;

beforeAll(async () => {
  [stack] = await Promise.all([startStack({ vars: PRESENCE_VARS }), cliEntry()]);
  token = await stack.mintToken("member@example.com");
}, 90_000);

afterAll(async () => {
  await stack?.stop();
});

/** A TCP proxy in front of the edge that records the request line of every HTTP request the CLI sends. */
async function recordingProxy(targetUrl: string) {
  const requests: { at: number; line: string }[] = [];
  const state = { refuseUpgrades: false };
  const forwarder = await tcpForwarder(targetUrl, (chunk, drop) => {
    // WebSocket frames from a client are masked, so they never read as a request line.
    for (const m of chunk.toString("latin1").matchAll(/^(GET|POST|DELETE|PUT|HEAD) (\S+) HTTP\/1\.1\r$/gm)) {
      requests.push({ at: Date.now(), line: `${m[1]} ${m[2]}` });
      if (state.refuseUpgrades && m[2] === "/api/presence/agent") drop();
    }
  });
  return {
    url: forwarder.url,
    requests,
    state,
    count: (pattern: RegExp, since = 0) => requests.filter((r) => r.at >= since && pattern.test(r.line)).length,
    /** Cuts every connection (the CLI's agent socket among them). */
    cut: forwarder.cut,
    close: forwarder.close,
  };
}

interface Listed {
  sessions: { id: string; alive: boolean; status: string; lastHeartbeat: string; exitCode: number | null }[];
}

async function listed(id: string) {
  const res = await fetch(`${stack.edgeUrl}/api/presence`, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`GET /api/presence: ${res.status}`);
  return ((await res.json()) as Listed).sessions.find((s) => s.id === id) ?? null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const HEARTBEAT_POST = /^POST \/api\/heartbeat(\/|$)/;
const AGENT_UPGRADE = /^GET \/api\/presence\/agent$/;

describe("outpost run over the agent socket", () => {
  it("beats over one WebSocket: the hub sees the session beating, the edge gets no heartbeat requests, the end goes over it too", async () => {
    const proxy = await recordingProxy(stack.edgeUrl);
    try {
      const id = `ws-${process.pid}-1`;
      const stop = join(tempDir(), "stop");
      const script = `setInterval(() => { if (require("fs").existsSync(${JSON.stringify(stop)})) process.exit(0) }, 100)`;
      const cli = await startCli(["run", "--session", id, "--", process.execPath, "-e", script], {
        env: { OUTPOST_URL: proxy.url, OUTPOST_TOKEN: token, OUTPOST_DEBUG: "1" },
      });
      await cli.waitFor(/GET \/api\/presence\/agent -> 101/, 10_000);
      const opened = Date.now();
      expect(proxy.count(AGENT_UPGRADE)).toBe(1);
      // The hub's view: alive, and its last heartbeat moving on, beat after beat.
      const first = await waitUntil(async () => (await listed(id))?.alive && (await listed(id)), 5000, "the session to be live");
      await sleep(4 * INTERVAL_S * 1000);
      const later = await listed(id);
      expect(later).toMatchObject({ alive: true, status: "working" });
      expect(Date.parse(later!.lastHeartbeat)).toBeGreaterThan(Date.parse(first.lastHeartbeat));
      expect((cli.stderr.match(new RegExp(`ws: POST /api/heartbeat/${id} -> 200`, "g")) ?? []).length).toBeGreaterThanOrEqual(3);
      // Nothing but the socket after it opened (the first beat, before it, may have gone over HTTP).
      expect(proxy.count(HEARTBEAT_POST, opened)).toBe(0);
      expect(proxy.count(HEARTBEAT_POST)).toBeLessThanOrEqual(1);

      writeFileSync(stop, "");
      const result = await cli.done;
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toMatch(new RegExp(`ws: DELETE /api/heartbeat/${id} -> 200`));
      expect(proxy.count(/^DELETE /)).toBe(0);
      expect(await listed(id)).toMatchObject({ alive: false, status: "ended", exitCode: 0 });
      expect(proxy.requests.map((r) => r.line).filter((l) => !HEARTBEAT_POST.test(l))).toEqual(["GET /api/presence/agent"]);
    } finally {
      await proxy.close();
    }
  }, 60_000);

  it("while the socket is down, beats go over HTTP; it reconnects and the beats move back to it", async () => {
    const proxy = await recordingProxy(stack.edgeUrl);
    try {
      const id = `ws-${process.pid}-2`;
      const cli = await startCli(["run", "--session", id, "--", "sleep", "30"], { env: { OUTPOST_URL: proxy.url, OUTPOST_TOKEN: token, OUTPOST_DEBUG: "1" } });
      await cli.waitFor(/GET \/api\/presence\/agent -> 101/, 10_000);
      await waitUntil(async () => (await listed(id))?.alive, 5000, "the session to be live");
      // The socket drops and cannot come back for a while: the beats carry on over HTTP and the session stays live.
      proxy.state.refuseUpgrades = true;
      proxy.cut();
      const cutAt = Date.now();
      await sleep(3 * INTERVAL_S * 1000);
      expect(proxy.count(HEARTBEAT_POST, cutAt)).toBeGreaterThanOrEqual(2);
      expect(proxy.count(AGENT_UPGRADE, cutAt), "reconnect attempts").toBeGreaterThanOrEqual(1);
      expect((await listed(id))?.alive).toBe(true);
      // Upgrades allowed again: the socket reconnects (backoff with jitter) and takes the beats back.
      proxy.state.refuseUpgrades = false;
      const upgrades = (cli.stderr.match(/GET \/api\/presence\/agent -> 101/g) ?? []).length;
      await waitUntil(async () => (cli.stderr.match(/GET \/api\/presence\/agent -> 101/g) ?? []).length > upgrades, 15_000, "the socket to reconnect");
      const back = Date.now();
      await sleep(3 * INTERVAL_S * 1000);
      expect(proxy.count(HEARTBEAT_POST, back + 100)).toBe(0);
      expect((await listed(id))?.alive).toBe(true);
      cli.child.kill("SIGTERM");
      const result = await cli.done;
      expect(result.code).toBe(143);
      expect(await listed(id)).toMatchObject({ status: "failed", exitCode: 143 });
    } finally {
      await proxy.close();
    }
  }, 60_000);
});
