// The built-in agent API (no --upstream): projects, sessions and tasks in SQLite, validation, roles, the WebSocket event stream.
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningOrigin } from "../../../origin/server.ts";
import { closeWebSocket, nextMessage, openWebSocket } from "../../support/ws-client.ts";
import { api, assertion, openCollecting, signedFetch, startTestOrigin, tempDir, type ErrorJson } from "./helpers.ts";

interface Project {
  id: string;
  name: string;
  description: string;
  createdBy: string;
}
interface Task {
  id: string;
  projectId: string;
  sessionId: string | null;
  title: string;
  status: string;
}
interface Session {
  id: string;
  status: string;
  name: string | null;
  projectId: string | null;
  timeline?: { event: string; status: string }[];
}

let origin: RunningOrigin;
let dir: string;
beforeAll(async () => {
  dir = tempDir();
  origin = await startTestOrigin({ dataDir: dir });
});
afterAll(async () => {
  await origin?.close();
  rmSync(dir, { recursive: true, force: true });
});

function expectError(res: { status: number; body: unknown }, status: number, code: string): string {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  const { error } = res.body as ErrorJson;
  expect(Object.keys(error).sort()).toEqual(["code", "message", "requestId"]);
  expect(error.code).toBe(code);
  return error.message;
}

describe("projects", () => {
  it("create, list, read and update; createdBy is the verified user", async () => {
    const created = await api<{ project: Project }>(
      origin.url,
      "POST",
      "/api/projects",
      { name: "  Laptop agent  ", description: "d" },
      { email: "member@example.com", role: "member" },
    );
    expect(created.status).toBe(201);
    expect(created.body.project).toMatchObject({ name: "Laptop agent", description: "d", createdBy: "member@example.com" });
    expect(created.headers.get("location")).toBe(`/api/projects/${created.body.project.id}`);
    const id = created.body.project.id;
    const list = await api<{ projects: Project[] }>(origin.url, "GET", "/api/projects?limit=10");
    expect(list.body.projects.map((p) => p.id)).toContain(id);
    const updated = await api<{ project: Project }>(origin.url, "PATCH", `/api/projects/${id}`, { description: "new" });
    expect(updated.body.project).toMatchObject({ name: "Laptop agent", description: "new" });
    const one = await api<{ project: Project & { taskCount: number } }>(origin.url, "GET", `/api/projects/${id}`);
    expect(one.body.project).toMatchObject({ id, description: "new", taskCount: 0 });
  });

  it.each([
    [{}, "name is required"],
    [{ name: "" }, "must not be empty"],
    [{ name: 5 }, "must be a string"],
    [{ name: "x".repeat(201) }, "at most 200"],
    [{ name: "x", colour: "red" }, "Unknown field: colour"],
  ])("refuses %j with 400 VALIDATION_FAILED", async (body, message) => {
    expect(expectError(await api(origin.url, "POST", "/api/projects", body), 400, "VALIDATION_FAILED")).toContain(message);
  });

  it("bad JSON, the wrong content type, paging and unknown ids get clear 4xx errors", async () => {
    const badJson = await signedFetch(origin.url, "/api/projects", { method: "POST", headers: { "content-type": "application/json" }, body: "{nope" });
    expect(badJson.status).toBe(400);
    expect(((await badJson.json()) as ErrorJson).error.code).toBe("INVALID_JSON");
    const text = await signedFetch(origin.url, "/api/projects", { method: "POST", headers: { "content-type": "text/plain" }, body: "name" });
    expect(text.status).toBe(415);
    await text.body?.cancel();
    expectError(await api(origin.url, "GET", "/api/projects?limit=0"), 400, "VALIDATION_FAILED");
    expectError(await api(origin.url, "GET", "/api/projects/prj_missing"), 404, "NOT_FOUND");
    expectError(await api(origin.url, "PATCH", "/api/projects/prj_missing", { name: "x" }), 404, "NOT_FOUND");
    expectError(await api(origin.url, "PATCH", "/api/projects/prj_missing", {}), 400, "VALIDATION_FAILED");
    expectError(await api(origin.url, "GET", "/api/nothing-here"), 404, "NOT_FOUND");
  });

  it("viewers read but do not write", async () => {
    const viewer = { email: "viewer@example.com", role: "viewer" };
    expect((await api(origin.url, "GET", "/api/projects", undefined, viewer)).status).toBe(200);
    expectError(await api(origin.url, "POST", "/api/projects", { name: "v" }, viewer), 403, "FORBIDDEN");
  });
});

describe("tasks and sessions", () => {
  it("a task belongs to a project and may name a session; filters narrow the list", async () => {
    const project = (await api<{ project: Project }>(origin.url, "POST", "/api/projects", { name: "T" })).body.project;
    expectError(await api(origin.url, "POST", "/api/tasks", { projectId: "prj_nope", title: "x" }), 400, "VALIDATION_FAILED");
    const session = await api<{ session: Session }>(origin.url, "POST", "/api/sessions", { id: "agent-1", name: "planner", projectId: project.id });
    expect(session.status).toBe(201);
    expect(session.body.session).toMatchObject({ id: "agent-1", status: "pending", projectId: project.id });
    expectError(await api(origin.url, "POST", "/api/sessions", { id: "agent-1" }), 409, "CONFLICT");
    expectError(await api(origin.url, "PATCH", "/api/sessions/agent-1", { status: "ended" }), 400, "VALIDATION_FAILED");

    const task = await api<{ task: Task }>(origin.url, "POST", "/api/tasks", { projectId: project.id, title: "Write tests", sessionId: "agent-1" });
    expect(task.status).toBe(201);
    expect(task.body.task).toMatchObject({ title: "Write tests", status: "todo", sessionId: "agent-1" });
    expectError(await api(origin.url, "PATCH", `/api/tasks/${task.body.task.id}`, { status: "finished" }), 400, "VALIDATION_FAILED");
    const done = await api<{ task: Task }>(origin.url, "PATCH", `/api/tasks/${task.body.task.id}`, { status: "done" });
    expect(done.body.task.status).toBe("done");

    const byProject = await api<{ tasks: Task[] }>(origin.url, "GET", `/api/tasks?projectId=${project.id}&status=done`);
    expect(byProject.body.tasks.map((t) => t.id)).toEqual([task.body.task.id]);
    expect((await api<{ tasks: Task[] }>(origin.url, "GET", `/api/tasks?projectId=${project.id}&status=todo`)).body.tasks).toEqual([]);
    const detail = await api<{ session: Session }>(origin.url, "GET", "/api/sessions/agent-1");
    expect(detail.body.session.timeline).toEqual([expect.objectContaining({ event: "created", status: "pending" })]);
    const renamed = await api<{ session: Session }>(origin.url, "PATCH", "/api/sessions/agent-1", { name: "Renamed" });
    expect(renamed.body.session.name).toBe("Renamed");
  });

  it("what was stored survives a restart of the origin", async () => {
    const made = (await api<{ project: Project }>(origin.url, "POST", "/api/projects", { name: "durable" })).body.project;
    await origin.close();
    origin = await startTestOrigin({ dataDir: dir });
    const again = await api<{ project: Project }>(origin.url, "GET", `/api/projects/${made.id}`);
    expect(again.body.project.name).toBe("durable");
  });
});

describe("WebSockets and the diagnostic routes", () => {
  it("the event stream announces changes as they commit", async () => {
    const stream = await openCollecting(`${origin.url}/api/ws/events`, { "outpost-assertion": await assertion("GET", "/api/ws/events") });
    expect(JSON.parse(await stream.next())).toMatchObject({ type: "hello", data: { user: "owner@example.com" } });
    const made = (await api<{ project: Project }>(origin.url, "POST", "/api/projects", { name: "streamed" })).body.project;
    expect(JSON.parse(await stream.next())).toMatchObject({ type: "project.created", data: { id: made.id, name: "streamed" } });
    await closeWebSocket(stream.ws);
  });

  it("echo, SSE and the WebSocket echo still answer", async () => {
    const echo = await signedFetch(origin.url, "/api/echo/a?b=1", { method: "POST", body: "hi" });
    expect(await echo.json()).toMatchObject({ method: "POST", path: "/api/echo/a", query: "?b=1", body: "hi" });
    const sse = await signedFetch(origin.url, "/api/events?count=2&interval=10");
    expect((await sse.text()).match(/event: tick/g)).toHaveLength(2);
    const ws = await openWebSocket(`${origin.url}/api/ws/echo`, { headers: { "outpost-assertion": await assertion("GET", "/api/ws/echo") } });
    expect(ws.ok).toBe(true);
    if (!ws.ok) return;
    const reply = nextMessage(ws.ws);
    ws.ws.send("ping");
    expect((await reply).data.toString()).toBe("ping");
    await closeWebSocket(ws.ws);
    const unknown = await openWebSocket(`${origin.url}/api/ws/nope`, { headers: { "outpost-assertion": await assertion("GET", "/api/ws/nope") } });
    expect(unknown.ok ? 101 : unknown.status).toBe(404);
  });
});
