// /api/tasks: list (by project, status or session), create, read and update the work items agents pick up.
import { Hono } from "hono";
import type { SQLInputValue } from "node:sqlite";
import { newId, taskJson, type Store } from "../store.ts";
import { checkId, invalid, notFound, oneOf, onlyFields, paging, readJson, requireWriter, text, type OriginVars } from "./validate.ts";

const TASK_STATUSES = ["todo", "in_progress", "done", "cancelled"] as const;
const CREATE_FIELDS = ["projectId", "title", "description", "status", "sessionId"] as const;
const UPDATE_FIELDS = ["title", "description", "status", "sessionId"] as const;

export const tasks = new Hono<{ Variables: OriginVars }>();

function mustExist(store: Store, table: "projects" | "sessions", id: string, field: string): void {
  if (!store.get(`SELECT 1 AS x FROM ${table} WHERE id = ?`, id)) throw invalid(`${field} ${JSON.stringify(id)} does not exist.`);
}

tasks.get("/", (c) => {
  const { limit, offset } = paging(c);
  const where: string[] = [];
  const params: SQLInputValue[] = [];
  const projectId = c.req.query("projectId");
  if (projectId !== undefined) {
    where.push("project_id = ?");
    params.push(checkId(projectId, "projectId"));
  }
  const sessionId = c.req.query("sessionId");
  if (sessionId !== undefined) {
    where.push("session_id = ?");
    params.push(checkId(sessionId, "sessionId"));
  }
  const status = oneOf({ status: c.req.query("status") }, "status", TASK_STATUSES);
  if (status !== undefined) {
    where.push("status = ?");
    params.push(status);
  }
  const sql = `SELECT * FROM tasks ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY created_at DESC, id LIMIT ? OFFSET ?`;
  const rows = c.get("store").all(sql, ...params, limit, offset);
  return c.json({ tasks: rows.map(taskJson), limit, offset });
});

tasks.post("/", async (c) => {
  const identity = requireWriter(c);
  const body = await readJson(c);
  onlyFields(body, CREATE_FIELDS);
  if (body.projectId === undefined) throw invalid("projectId is required.");
  const projectId = checkId(body.projectId, "projectId");
  const title = text(body, "title", { required: true, max: 500 })!;
  const description = text(body, "description", { max: 20_000 }) ?? "";
  const status = oneOf(body, "status", TASK_STATUSES) ?? "todo";
  const sessionId = body.sessionId === undefined || body.sessionId === null ? null : checkId(body.sessionId, "sessionId");
  const store = c.get("store");
  const now = Date.now();
  const task = store.tx(() => {
    mustExist(store, "projects", projectId, "projectId");
    if (sessionId) mustExist(store, "sessions", sessionId, "sessionId");
    const id = newId("tsk");
    store.run(
      `INSERT INTO tasks (id, project_id, session_id, title, description, status, created_by, created_at, updated_at)
       VALUES (?,?,?,?,?,?,?,?,?)`,
      id,
      projectId,
      sessionId,
      title,
      description,
      status,
      identity.email || identity.sub,
      now,
      now,
    );
    const created = taskJson(store.get("SELECT * FROM tasks WHERE id = ?", id)!);
    store.emit({ type: "task.created", data: created });
    return created;
  });
  c.header("Location", `/api/tasks/${task.id}`);
  return c.json({ task }, 201);
});

tasks.get("/:id", (c) => {
  const id = checkId(c.req.param("id"), "id");
  const row = c.get("store").get("SELECT * FROM tasks WHERE id = ?", id);
  if (!row) throw notFound("task", id);
  return c.json({ task: taskJson(row) });
});

tasks.patch("/:id", async (c) => {
  requireWriter(c);
  const id = checkId(c.req.param("id"), "id");
  const body = await readJson(c);
  onlyFields(body, UPDATE_FIELDS);
  const title = text(body, "title", { required: body.title !== undefined, max: 500 });
  const description = text(body, "description", { max: 20_000 });
  const status = oneOf(body, "status", TASK_STATUSES);
  const sessionId = body.sessionId === undefined ? undefined : body.sessionId === null ? null : checkId(body.sessionId, "sessionId");
  if (title === undefined && description === undefined && status === undefined && sessionId === undefined) {
    throw invalid(`Nothing to change: give ${UPDATE_FIELDS.join(", ")}.`);
  }
  const store = c.get("store");
  const task = store.tx(() => {
    const current = store.get("SELECT * FROM tasks WHERE id = ?", id);
    if (!current) throw notFound("task", id);
    if (sessionId) mustExist(store, "sessions", sessionId, "sessionId");
    store.run(
      "UPDATE tasks SET title = ?, description = ?, status = ?, session_id = ?, updated_at = ? WHERE id = ?",
      title ?? (current.title as string),
      description ?? (current.description as string),
      status ?? (current.status as string),
      sessionId === undefined ? (current.session_id as string | null) : sessionId,
      Date.now(),
      id,
    );
    const updated = taskJson(store.get("SELECT * FROM tasks WHERE id = ?", id)!);
    store.emit({ type: "task.updated", data: updated });
    return updated;
  });
  return c.json({ task });
});
