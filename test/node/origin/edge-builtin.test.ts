// Through the real edge (workerd) to the real origin on loopback: the built-in API, SSE, WebSockets, and presence events from the hub.
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, readSse } from "../../support/http-client.ts";
import { OWNER, VIEWER } from "../../support/identity.ts";
import { spawnOrigin, trustEdgeEnv, type SpawnedOrigin } from "../../support/spawn-origin.ts";
import { startStack, type Stack } from "../../support/stack.ts";
import { closeWebSocket, nextMessage, openWebSocket } from "../../support/ws-client.ts";
import { tempDir } from "./helpers.ts";

interface Session {
  id: string;
  status: string;
  reason: string | null;
  exitCode: number | null;
  name: string | null;
  timeline: { event: string; eventId?: string }[];
}

let stack: Stack;
let dir: string;
let token: string;
let restarted: SpawnedOrigin | null = null;

beforeAll(async () => {
  dir = tempDir();
  stack = await startStack({ originArgs: ["--data-dir", dir], vars: { HEARTBEAT_TTL_SECONDS: "2", HEARTBEAT_INTERVAL_SECONDS: "1" } });
  token = await stack.mintToken(OWNER);
});

afterAll(async () => {
  await stack?.stop();
  await restarted?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function edge<T = unknown>(method: string, path: string, body?: unknown, as = token) {
  const res = await fetch(`${stack.edgeUrl}${path}`, {
    method,
    headers: { ...bearer(as), ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : null) as T };
}

/** Polls until `check` returns a value (not undefined) or the time is up. */
async function until<T>(check: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}

const sessionWith = (id: string, status: string, timeoutMs = 20_000) =>
  until(
    async () => {
      const res = await edge<{ session: Session }>("GET", `/api/sessions/${id}`);
      return res.status === 200 && res.body.session.status === status ? res.body.session : undefined;
    },
    timeoutMs,
    `session ${id} to be ${status} at the origin`,
  );

describe("the built-in API through the edge", () => {
  it("REST: create, list and update, with the user the edge verified", async () => {
    const created = await edge<{ project: { id: string; createdBy: string } }>("POST", "/api/projects", { name: "via edge" });
    expect(created.status).toBe(201);
    expect(created.body.project.createdBy).toBe(OWNER);
    const task = await edge<{ task: { id: string } }>("POST", "/api/tasks", { projectId: created.body.project.id, title: "t" });
    expect(task.status).toBe(201);
    const patched = await edge<{ task: { status: string } }>("PATCH", `/api/tasks/${task.body.task.id}?from=edge`, { status: "in_progress" });
    expect(patched.body.task.status).toBe("in_progress");
    const list = await edge<{ projects: { id: string }[] }>("GET", "/api/projects?limit=5");
    expect(list.body.projects.map((p) => p.id)).toContain(created.body.project.id);
    const me = await edge("GET", "/api/me");
    expect(me.body).toEqual({ sub: expect.stringContaining(OWNER), email: OWNER, role: "owner" });
  });

  it("the origin's 4xx errors reach the client in the standard shape", async () => {
    const invalid = await edge<{ error: { code: string; requestId: string } }>("POST", "/api/projects", { nope: 1 });
    expect(invalid.status).toBe(400);
    expect(invalid.body.error.code).toBe("VALIDATION_FAILED");
    expect(invalid.body.error.requestId).toBe(invalid.headers.get("x-request-id"));
    const viewer = await edge("GET", "/api/projects", undefined, await stack.mintToken(VIEWER));
    expect(viewer.status).toBe(200);
  });

  it("an SSE stream arrives event by event", async () => {
    const read = await readSse(`${stack.edgeUrl}/api/events?count=4&interval=250`, {}, { bearer: token });
    expect(read.status).toBe(200);
    expect(read.events.map((e) => e.id)).toEqual(["1", "2", "3", "4"]);
    expect(read.events[3]!.at - read.events[0]!.at).toBeGreaterThan(500);
  });

  it("a WebSocket echo (and the event stream) open through the edge", async () => {
    const opened = await openWebSocket(`${stack.edgeUrl}/api/ws/echo`, { bearer: token });
    expect(opened.ok).toBe(true);
    if (!opened.ok) return;
    const reply = nextMessage(opened.ws);
    opened.ws.send("through the edge");
    expect((await reply).data.toString()).toBe("through the edge");
    await closeWebSocket(opened.ws);
  });
});

describe("presence events from the edge's hub", () => {
  const beat = (id: string, body: Record<string, unknown> = {}) =>
    edge("POST", `/api/heartbeat/${id}`, { status: "working", name: id, hostname: "laptop", ...body });

  it("a heartbeat makes the session live at the origin; a clean stop ends it", async () => {
    expect((await beat("e2e-clean")).status).toBe(200);
    await sessionWith("e2e-clean", "working");
    expect((await edge("DELETE", "/api/heartbeat/e2e-clean", {})).status).toBe(200);
    const ended = await sessionWith("e2e-clean", "ended");
    expect(ended.timeline.map((e) => e.event)).toEqual(["session_online", "session_ended"]);
  });

  it("a session whose heartbeats stop fails with agent_disconnected after the TTL", async () => {
    expect((await beat("e2e-quiet")).status).toBe(200);
    const failed = await sessionWith("e2e-quiet", "failed", 25_000);
    expect(failed.reason).toBe("agent_disconnected");
  });

  it("the origin killed and restarted mid-outbox: queued events arrive afterwards, each applied once", async () => {
    expect((await beat("e2e-restart")).status).toBe(200);
    await sessionWith("e2e-restart", "working");
    const port = new URL(stack.originUrl).port;
    stack.origin!.child.kill("SIGKILL");
    await stack.origin!.stop();
    // While the origin is gone the hub queues these and retries with backoff (one heartbeat a second at most).
    await new Promise((r) => setTimeout(r, 1_100));
    expect((await beat("e2e-restart", { status: "idle" })).status).toBe(200);
    expect((await edge("DELETE", "/api/heartbeat/e2e-restart", { exitCode: 2, reason: "killed" })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1_500));
    restarted = await spawnOrigin(["--data-dir", dir, "--port", port], trustEdgeEnv());
    const failed = await sessionWith("e2e-restart", "failed", 45_000);
    expect(failed).toMatchObject({ reason: "killed", exitCode: 2 });
    const ids = failed.timeline.map((e) => e.eventId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(failed.timeline.map((e) => e.event)).toEqual(["session_online", "session_updated", "session_failed"]);
  });
});
