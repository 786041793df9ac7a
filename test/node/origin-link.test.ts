// The origin's link over real processes: a real origin child linked to the real Worker in workerd, watched by a phone's
// presence WebSocket. Frozen (SIGSTOP: its connections left half-open) it shows offline; resumed (SIGCONT) online;
// killed offline, restarted online. Order and state are asserted, not timings (those are `npm run bench -- origin-link`).
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer } from "../support/http-client.ts";
import { MEMBER, OWNER } from "../support/identity.ts";
import { spawnOrigin, trustEdgeEnv, type SpawnedOrigin } from "../support/spawn-origin.ts";
import { startStack, type Stack } from "../support/stack.ts";
import { runCli, startCli, tempDir } from "./cli/helpers.ts";

interface OriginState {
  online: boolean;
  state: string;
  link: boolean;
  lastSeen: string | null;
}

interface Message {
  type: "snapshot" | "event";
  seq: number;
  origin?: OriginState;
  event?: { type: string; data: OriginState };
}

let stack: Stack;
let port = 0;
let ownerToken = "";
let origin: SpawnedOrigin | null = null;
let phone: WebSocket;
const messages: Message[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(check: () => T | undefined | Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A config directory holding the owner's signed-in CLI session for this stack, as `outpost login` leaves it. */
function storedCredentials(): string {
  const xdg = tempDir();
  mkdirSync(join(xdg, "outpost"), { recursive: true, mode: 0o700 });
  const credentials = {
    version: 1,
    url: stack.edgeUrl,
    provider: "outpost",
    access_token: ownerToken,
    refresh_token: "unused",
    expires_at: Date.now() + 600_000,
    email: OWNER,
  };
  writeFileSync(join(xdg, "outpost", "credentials.json"), JSON.stringify(credentials), { mode: 0o600 });
  return xdg;
}

/** The origin on its fixed port (the Worker's ORIGIN_URL), linked to the edge as the owner with OUTPOST_TOKEN. */
function startOrigin(): Promise<SpawnedOrigin> {
  return spawnOrigin(["--port", String(port), "--edge", stack.edgeUrl], { ...trustEdgeEnv(), OUTPOST_TOKEN: ownerToken });
}

async function presence(): Promise<{ origin: OriginState }> {
  return (await fetch(`${stack.edgeUrl}/api/presence`, { headers: bearer(await stack.mintToken(MEMBER)) })).json() as Promise<{ origin: OriginState }>;
}

/** Origin events the phone received so far, as [type, state, link]. */
function originEvents(): [string, string, boolean][] {
  return messages.filter((m) => m.event?.type.startsWith("origin_")).map((m) => [m.event!.type, m.event!.data.state, m.event!.data.link]);
}

/**
 * The origin's states as the phone saw them, one entry per change of state. On waking, the origin may answer the
 * edge's probe a moment before its new link is up: then an origin_online with link:false comes first and a second one
 * with link:true follows, both the state `online`.
 */
function states(): string[] {
  return originEvents()
    .map(([, state]) => state)
    .filter((state, i, all) => state !== all[i - 1]);
}

/** Waits until the phone's last origin event is `type` with `link`, as the `n`th change of state. */
function reached(n: number, type: string, link: boolean, what: string): Promise<[string, string, boolean]> {
  return until(
    () => {
      const last = originEvents().at(-1);
      return states().length === n && last?.[0] === type && last[2] === link ? last : undefined;
    },
    20_000,
    `${what} (origin events so far: ${JSON.stringify(originEvents())})`,
  );
}

beforeAll(async () => {
  port = await freePort();
  stack = await startStack({ originUrl: `http://127.0.0.1:${port}` });
  ownerToken = await stack.mintToken(OWNER);
  origin = await startOrigin();
  await until(async () => ((await presence()).origin.link ? true : undefined), 15_000, "the origin's link to come up");
  phone = new WebSocket(`${stack.edgeUrl.replace(/^http/, "ws")}/api/presence/ws`, { headers: bearer(await stack.mintToken(MEMBER)) });
  phone.on("message", (data) => messages.push(JSON.parse(data.toString()) as Message));
  await until(() => messages[0], 10_000, "the snapshot");
}, 90_000);

afterAll(async () => {
  phone?.terminate();
  if (origin?.child.signalCode === null && origin.child.exitCode === null) origin.child.kill("SIGCONT");
  await origin?.stop();
  await stack?.stop();
});

describe("the origin's link, over real processes", () => {
  it("the phone's snapshot shows the linked origin online", () => {
    expect(messages[0]).toMatchObject({ type: "snapshot", origin: { online: true, state: "online", link: true } });
    expect(originEvents()).toEqual([]);
  });

  it("frozen (SIGSTOP), it goes offline; resumed (SIGCONT), online again over a new link", async () => {
    origin!.child.kill("SIGSTOP");
    expect(await reached(1, "origin_offline", false, "origin_offline after SIGSTOP")).toEqual(["origin_offline", "offline", false]);
    expect(originEvents()).toHaveLength(1);
    const offline = messages.find((m) => m.event?.type === "origin_offline")!;
    expect(offline.event!.data.online).toBe(false);
    expect(offline.event!.data.lastSeen).not.toBeNull();
    expect((await presence()).origin).toMatchObject({ online: false, state: "offline", link: false });

    origin!.child.kill("SIGCONT");
    expect(await reached(2, "origin_online", true, "origin_online over the new link after SIGCONT")).toEqual(["origin_online", "online", true]);
    expect(states()).toEqual(["offline", "online"]);
    expect((await presence()).origin).toMatchObject({ online: true, state: "online", link: true });
  }, 40_000);

  it("killed, it goes offline; restarted, online", async () => {
    origin!.child.kill("SIGKILL");
    await origin!.stop();
    expect(await reached(3, "origin_offline", false, "origin_offline after the kill")).toEqual(["origin_offline", "offline", false]);
    origin = await startOrigin();
    expect(await reached(4, "origin_online", true, "origin_online after the restart")).toEqual(["origin_online", "online", true]);
    // Nothing else happened in between: these four changes of state, in this order, each event with its own seq.
    expect(states()).toEqual(["offline", "online", "offline", "online"]);
    for (const [type, state] of originEvents()) expect(type).toBe(`origin_${state}`);
    const seqs = messages.map((m) => m.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
  }, 40_000);

  it("the link is listed with the devices, as the owner's (OUTPOST_TOKEN names no device)", async () => {
    const res = await fetch(`${stack.edgeUrl}/api/devices`, { headers: bearer(ownerToken) });
    const body = (await res.json()) as { originLinks: { deviceId: string | null; email: string }[] };
    expect(body.originLinks).toEqual([expect.objectContaining({ deviceId: null, email: OWNER })]);
    // And `outpost devices` says so.
    const listed = await runCli(["devices"], { xdg: storedCredentials(), env: trustEdgeEnv() as Record<string, string> });
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(`origin link by ${OWNER} (a token with no device)`);
  });

  it("`outpost origin` signs its link in as the user signed in on this computer, and says goodbye when stopped", async () => {
    const xdg = storedCredentials();
    const cli = await startCli(["origin", "--port", "0", "--edge", stack.edgeUrl, "--data-dir", tempDir("outpost-origin-")], {
      xdg,
      env: trustEdgeEnv() as Record<string, string>,
    });
    try {
      await cli.waitFor(new RegExp(`origin link: up to ${stack.edgeUrl} as the stored credentials of ${OWNER}`));
      const links = async () =>
        ((await (await fetch(`${stack.edgeUrl}/api/devices`, { headers: bearer(ownerToken) })).json()) as { originLinks: unknown[] }).originLinks.length;
      expect(await links()).toBe(2);
      const before = originEvents().length;
      cli.child.kill("SIGTERM");
      expect((await cli.done).code).toBe(0);
      await until(async () => ((await links()) === 1 ? true : undefined), 10_000, "the CLI's link to close");
      // The test's own origin is still linked: its state did not change.
      expect(originEvents()).toHaveLength(before);
      expect((await presence()).origin).toMatchObject({ state: "online", link: true });
    } finally {
      cli.child.kill("SIGKILL");
    }
  });
});
