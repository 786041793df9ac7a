// outpost run / heartbeat against the real stack: presence after each kind of exit, signal forwarding, batching,
// and an edge that goes away and comes back while the command runs.
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack, type Stack } from "../../support/stack.ts";
import { cliEntry, oneLineError, runCli, startCli, tcpForwarder, tempDir, waitUntil } from "./helpers.ts";

/** Fast presence for tests: heartbeats every 2 s, expiry after 6 s. */
const INTERVAL_S = 2;
const PRESENCE_VARS = { HEARTBEAT_INTERVAL_SECONDS: String(INTERVAL_S), HEARTBEAT_TTL_SECONDS: "6" };

let stack: Stack;
let token: string;

beforeAll(async () => {
  [stack] = await Promise.all([startStack({ vars: PRESENCE_VARS }), cliEntry()]);
  token = await stack.mintToken("owner@example.com");
}, 90_000);

afterAll(async () => {
  await stack?.stop();
});

interface SessionData {
  status: string;
  alive: boolean;
  pid: number | null;
  name: string | null;
  exitCode: number | null;
  reason: string | null;
}

async function session(edgeUrl: string, id: string): Promise<{ alive: boolean; data: SessionData | null }> {
  const res = await fetch(`${edgeUrl}/api/heartbeat/${id}`, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`GET /api/heartbeat/${id}: ${res.status} ${await res.text()}`);
  return (await res.json()) as { alive: boolean; data: SessionData | null };
}

const env = () => ({ OUTPOST_URL: stack.edgeUrl, OUTPOST_TOKEN: token });
let n = 0;
const newId = (label: string) => `${label}-${process.pid}-${++n}`;

describe("outpost run", () => {
  it("a command that exits 0: its output passes through, exit 0, presence ended", async () => {
    const id = newId("ok");
    const result = await runCli(["run", "--session", id, "--name", "greeter", "--", "sh", "-c", "echo hello from the child; sleep 0.5"], { env: env() });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe("hello from the child\n");
    expect(result.stderr).toBe("");
    const s = await session(stack.edgeUrl, id);
    expect(s.alive).toBe(false);
    expect(s.data).toMatchObject({ status: "ended", name: "greeter", exitCode: 0 });
    expect(s.data!.pid).toBeGreaterThan(0);
  });

  it("a command that exits 3: exit 3, presence failed with code 3", async () => {
    const id = newId("three");
    const result = await runCli(["run", "--session", id, "--", "sh", "-c", "sleep 0.3; exit 3"], { env: env() });
    expect(result.code).toBe(3);
    const s = await session(stack.edgeUrl, id);
    expect(s.data).toMatchObject({ status: "failed", exitCode: 3 });
  });

  it("a command killed by a signal: exit 128+9, presence failed naming the signal", async () => {
    const id = newId("killed");
    const result = await runCli(["run", "--session", id, "--", "sh", "-c", "sleep 0.3; kill -KILL $$"], { env: env() });
    expect(result.code).toBe(137);
    const s = await session(stack.edgeUrl, id);
    expect(s.data).toMatchObject({ status: "failed", exitCode: 137 });
    expect(s.data!.reason).toContain("SIGKILL");
  });

  it("is live while the command runs, with heartbeats at the edge's interval", async () => {
    const id = newId("live");
    const dir = tempDir();
    const stop = join(dir, "stop");
    const cli = await startCli(
      [
        "run",
        "--session",
        id,
        "--",
        process.execPath,
        "-e",
        `setInterval(() => { if (require("fs").existsSync(${JSON.stringify(stop)})) process.exit(0) }, 100)`,
      ],
      { env: { ...env(), OUTPOST_DEBUG: "1" } },
    );
    await waitUntil(async () => (await session(stack.edgeUrl, id)).alive, 10_000, "the session to be live");
    const list = await runCli(["sessions", "--json"], { env: env() });
    expect((JSON.parse(list.stdout) as { sessions: { id: string; alive: boolean }[] }).sessions).toContainEqual(expect.objectContaining({ id, alive: true }));
    const table = await runCli(["sessions"], { env: env() });
    expect(table.stdout).toMatch(new RegExp(`^${id}\\s+node\\s+working`, "m"));
    // Three heartbeats take about two intervals.
    await waitUntil(
      async () => (cli.stderr.match(new RegExp(`POST /api/heartbeat/${id} -> 200`, "g")) ?? []).length >= 3,
      4 * INTERVAL_S * 1000,
      "three heartbeats",
    );
    writeFileSync(stop, "");
    const result = await cli.done;
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(new RegExp(`DELETE /api/heartbeat/${id} -> 200`));
    expect((await session(stack.edgeUrl, id)).data!.status).toBe("ended");
  });

  it.each([
    ["SIGTERM", 143],
    ["SIGHUP", 129],
  ] as const)("forwards %s to the command and exits 128+signo", async (signal, code) => {
    const id = newId(signal.toLowerCase());
    const cli = await startCli(["run", "--session", id, "--", "sleep", "30"], { env: env() });
    await waitUntil(async () => (await session(stack.edgeUrl, id)).alive, 10_000, "the session to be live");
    cli.child.kill(signal);
    const result = await cli.done;
    expect(result.code).toBe(code);
    const s = await session(stack.edgeUrl, id);
    expect(s.data).toMatchObject({ status: "failed", exitCode: code });
    expect(s.data!.reason).toContain(signal);
  });

  it("forwards SIGINT to a command that handles it and exits with the command's own code", async () => {
    const id = newId("sigint");
    const script = `process.on("SIGINT", () => { console.log("child got SIGINT"); process.exit(0) }); setInterval(() => {}, 1000); console.log("ready")`;
    const cli = await startCli(["run", "--session", id, "--", process.execPath, "-e", script], { env: env() });
    await cli.waitFor(/ready/);
    await waitUntil(async () => (await session(stack.edgeUrl, id)).alive, 10_000, "the session to be live");
    cli.child.kill("SIGINT");
    const result = await cli.done;
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("child got SIGINT");
    expect((await session(stack.edgeUrl, id)).data!.status).toBe("ended");
  });

  it("a command that cannot start exits 127 with one error line", async () => {
    const result = await runCli(["run", "--", "definitely-not-a-command-xyz"], { env: env() });
    expect(result.code).toBe(127);
    expect(oneLineError(result)).toMatch(/cannot start "definitely-not-a-command-xyz": ENOENT/);
  });
});

describe("outpost heartbeat", () => {
  it("keeps several sessions live with one batched request each interval, and removes them on Ctrl-C", async () => {
    const a = newId("batch-a");
    const b = newId("batch-b");
    const cli = await startCli(["heartbeat", a, b, "--status", "idle", "--name", "pair"], { env: { ...env(), OUTPOST_DEBUG: "1" } });
    await waitUntil(async () => (await session(stack.edgeUrl, a)).alive && (await session(stack.edgeUrl, b)).alive, 10_000, "both sessions live");
    expect((await session(stack.edgeUrl, a)).data).toMatchObject({ status: "idle", name: "pair" });
    expect(cli.stderr).toMatch(/POST \/api\/heartbeat -> 200/);
    expect(cli.stderr).not.toMatch(/POST \/api\/heartbeat\/\S+ ->/);
    cli.child.kill("SIGINT");
    const result = await cli.done;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain(`Removed ${a}, ${b}`);
    for (const id of [a, b]) expect((await session(stack.edgeUrl, id)).alive).toBe(false);
  });

  it("with --pid, ends the session when that process exits", async () => {
    const id = newId("pid");
    const { spawn } = await import("node:child_process");
    const sleeper = spawn("sleep", ["1.5"]);
    const cli = await startCli(["heartbeat", id, "--pid", String(sleeper.pid)], { env: env() });
    await waitUntil(async () => (await session(stack.edgeUrl, id)).alive, 10_000, "the session to be live");
    const result = await cli.done;
    expect(result.code).toBe(0);
    const s = await session(stack.edgeUrl, id);
    expect(s.alive).toBe(false);
    expect(s.data!.reason).toContain(`process ${sleeper.pid} exited`);
  });
});

describe("the edge goes away during outpost run", () => {
  it("the command is unaffected; heartbeats back off and presence returns within one interval of the edge's restart", async () => {
    const first = await startStack({ vars: PRESENCE_VARS });
    const fwd = await tcpForwarder(first.edgeUrl);
    let second: Stack | null = null;
    try {
      const id = newId("restart");
      const dir = tempDir();
      const stop = join(dir, "stop");
      const ticks = join(dir, "ticks");
      // The child appends a tick every 100 ms, and exits 0 when told to.
      const script = `const fs = require("fs"); setInterval(() => { fs.appendFileSync(${JSON.stringify(ticks)}, "."); if (fs.existsSync(${JSON.stringify(stop)})) process.exit(0) }, 100)`;
      const cli = await startCli(["run", "--session", id, "--", process.execPath, "-e", script], { env: { OUTPOST_URL: fwd.url, OUTPOST_TOKEN: token } });
      await waitUntil(async () => (await session(fwd.url, id)).alive, 10_000, "the session to be live");

      await first.stop();
      await cli.waitFor(/edge unreachable/, 4 * INTERVAL_S * 1000);
      const { readFileSync } = await import("node:fs");
      const before = readFileSync(ticks, "utf8").length;
      await new Promise((r) => setTimeout(r, 2 * INTERVAL_S * 1000));
      expect(readFileSync(ticks, "utf8").length, "the child keeps running while the edge is down").toBeGreaterThan(before + 10);
      expect(cli.child.exitCode).toBeNull();

      second = await startStack({ vars: PRESENCE_VARS });
      // The edge is back once it answers (its presence hub awake); from then on the clock runs.
      await session(second.edgeUrl, "warm-up");
      fwd.retarget(second.edgeUrl);
      const restarted = Date.now();
      await waitUntil(async () => (await session(second!.edgeUrl, id)).alive, 3 * INTERVAL_S * 1000, "presence to return");
      const tookMs = Date.now() - restarted;
      expect(tookMs, "presence back within one interval (plus request time)").toBeLessThan(INTERVAL_S * 1000 + 1000);
      await cli.waitFor(/edge reachable again/, 5000);

      writeFileSync(stop, "");
      const result = await cli.done;
      expect(result.code, result.stderr).toBe(0);
      expect((await session(second.edgeUrl, id)).data!.status).toBe("ended");
      expect(existsSync(ticks)).toBe(true);
    } finally {
      await fwd.close();
      await second?.stop();
      await first.stop().catch(() => {});
    }
  }, 90_000);
});
