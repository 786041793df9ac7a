// The origin, then the app behind its --upstream, killed (SIGKILL) in the middle of an SSE stream and of an upload:
// the phone's request through the real edge ends (a JSON error before headers, a closed stream after), never hangs.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OWNER } from "../../support/identity.ts";
import { spawnOrigin, trustEdgeEnv, type SpawnedOrigin } from "../../support/spawn-origin.ts";
import { startStack, type Stack } from "../../support/stack.ts";
import { exchange, killChild, spawnApp, sseData, type AppProcess, type Exchange } from "./helpers.ts";

interface ErrorBody {
  error: { code: string; message: string; requestId: string };
}

let stack: Stack;
let token: string;
/** The process on the origin's port now: the stack's own at first, then respawned ones (same port, so ORIGIN_URL holds). */
let origin: SpawnedOrigin;
let app: AppProcess | null = null;
let originPort: string;
/** The app's port, kept across its restarts (the origin's --upstream names it). */
let appPort = 0;

// Long enough that an origin timeout cannot stand in for noticing the kill: the uploads below end well before it.
const ORIGIN_TIMEOUT_MS = 10_000;
const UPLOAD = { totalBytes: 8 * 1024 * 1024, chunkBytes: 64 * 1024, everyMs: 10 };

beforeAll(async () => {
  stack = await startStack({ vars: { ORIGIN_TIMEOUT_MS: String(ORIGIN_TIMEOUT_MS) } });
  token = await stack.mintToken(OWNER);
  if (!stack.origin) throw new Error("the stack spawned no origin");
  origin = stack.origin;
  originPort = new URL(stack.originUrl).port;
});

afterAll(async () => {
  await stack?.stop();
  await origin?.stop();
  await app?.kill();
});

/** A fresh origin on the same port, as `outpost origin` restarted by the user would be. */
async function respawnOrigin(args: string[] = []): Promise<void> {
  await origin.stop();
  origin = await spawnOrigin(["--port", originPort, ...args], trustEdgeEnv());
}

/** Starts an endless SSE stream through the edge and kills `victim` once `events` events have arrived. */
async function killMidStream(path: string, events: number, victim: () => Promise<void>): Promise<{ read: Exchange; seenAtKill: number }> {
  let killing: Promise<void> | null = null;
  let seenAtKill = 0;
  const read = await exchange(`${stack.edgeUrl}${path}`, {
    token,
    headers: { accept: "text/event-stream" },
    onBody: (body) => {
      if (killing || sseData(body).length < events) return;
      seenAtKill = sseData(body).length;
      killing = victim();
    },
  });
  await killing;
  return { read, seenAtKill };
}

/** Uploads through the edge and kills `victim` once 1 MiB is on its way (the whole 8 MiB, the test stacks' cap, would take over a second). */
async function killMidUpload(path: string, victim: () => Promise<void>, declareLength = false): Promise<Exchange> {
  let killing: Promise<void> | null = null;
  const result = await exchange(`${stack.edgeUrl}${path}`, {
    token,
    headers: { "content-type": "application/octet-stream", ...(declareLength ? { "content-length": String(UPLOAD.totalBytes) } : {}) },
    upload: UPLOAD,
    onSent: (sent) => {
      if (!killing && sent >= 1024 * 1024) killing = victim();
    },
  });
  await killing;
  return result;
}

function expectJsonError(result: Exchange, status: number, code: string): void {
  expect({ ending: result.ending, status: result.status }, result.body).toEqual({ ending: "complete", status });
  expect(result.headers["content-type"]).toMatch(/^application\/json/);
  expect(JSON.parse(result.body) as ErrorBody).toEqual({
    error: { code, message: expect.any(String), requestId: result.headers["x-request-id"] },
  });
  // The kill came mid-body: the client was still sending when the answer came.
  expect(result.sentBytes).toBeGreaterThanOrEqual(1024 * 1024);
  expect(result.sentBytes).toBeLessThan(UPLOAD.totalBytes);
}

function expectClosedStream(read: Exchange, seenAtKill: number): void {
  expect(read.status).toBe(200);
  expect(read.headers["content-type"]).toMatch(/^text\/event-stream/);
  // Everything sent before the kill arrived, in order; then the stream closed.
  const ns = sseData(read.body).map((data) => (JSON.parse(data) as { n: number }).n);
  expect(ns.length).toBeGreaterThanOrEqual(seenAtKill);
  expect(ns).toEqual(Array.from({ length: ns.length }, (_, i) => i + 1));
  expect(ns.length).toBeLessThan(1000);
  // Cut, not ended as if complete: a client can tell a truncated body (a download, say) from a whole one.
  expect(read.ending).toBe("cut");
}

// In order: the built-in origin is killed twice, then an origin forwarding to an app whose process is killed twice.
describe("the built-in origin killed", () => {
  it("in the middle of an SSE stream: the phone's stream closes after the events already sent", async () => {
    const { read, seenAtKill } = await killMidStream("/api/events?count=1000&interval=100", 3, () => killChild(origin.child));
    console.log(`origin killed mid-SSE: ${sseData(read.body).length} events, then ${read.ending}`);
    expectClosedStream(read, seenAtKill);
  });

  // The edge counts a chunked body against the cap itself and passes a declared length's body on as it is.
  it.each([
    ["chunked", false],
    ["with a declared Content-Length", true],
  ])("in the middle of an upload (%s): 502 ORIGIN_UNREACHABLE in the standard shape, before the body was all sent", async (_label, declared) => {
    await respawnOrigin();
    const result = await killMidUpload("/api/echo/upload", () => killChild(origin.child), declared);
    console.log(`origin killed mid-upload: ${result.status} after ${result.sentBytes} bytes sent`);
    expectJsonError(result, 502, "ORIGIN_UNREACHABLE");
  });
});

describe("the app behind --upstream killed", () => {
  it("in the middle of an SSE stream: the phone's stream closes after the events already sent", async () => {
    app = await spawnApp();
    appPort = Number(new URL(app.url).port);
    await respawnOrigin(["--upstream", app.url]);
    const victim = app;
    const { read, seenAtKill } = await killMidStream("/api/sse?count=1000&interval=100", 3, () => victim.kill());
    console.log(`app killed mid-SSE: ${sseData(read.body).length} events, then ${read.ending}`);
    expectClosedStream(read, seenAtKill);
  });

  it("in the middle of an upload: 502 UPSTREAM_UNREACHABLE in the standard shape, before the body was all sent", async () => {
    app = await spawnApp(appPort);
    const victim = app;
    const result = await killMidUpload("/api/upload", () => victim.kill());
    console.log(`app killed mid-upload: ${result.status} after ${result.sentBytes} bytes sent`);
    expectJsonError(result, 502, "UPSTREAM_UNREACHABLE");
  });

  it("afterwards the same edge and origin serve the restarted app at once", async () => {
    app = await spawnApp(appPort);
    const result = await exchange(`${stack.edgeUrl}/api/after-the-kills`, { token });
    expect({ ending: result.ending, status: result.status }).toEqual({ ending: "complete", status: 200 });
    expect(JSON.parse(result.body)).toMatchObject({ method: "GET", url: "/api/after-the-kills" });
  });
});
