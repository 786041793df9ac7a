// /api/sessions: agent sessions. Their status and timeline come from the edge's presence events; names and projects from here.
import { Hono } from "hono";
import type { SQLInputValue } from "node:sqlite";
import { SESSION_STATUSES as PRESENCE_STATUSES } from "../../shared/api-types.ts";
import { OutpostError } from "../../shared/errors.ts";
import { SESSION_NAME_MAX } from "../../shared/limits.ts";
import { newId, sessionJson, type OriginTimelineEntry as TimelineEntry } from "../store.ts";
import { checkId, invalid, notFound, oneOf, onlyFields, paging, readJson, requireWriter, text, type OriginVars } from "./validate.ts";

/** pending: created here, not yet seen by the edge. The rest are the edge's presence statuses. */
const SESSION_STATUSES = ["pending", ...PRESENCE_STATUSES] as const;
const CREATE_FIELDS = ["id", "name", "projectId"] as const;
const UPDATE_FIELDS = ["name", "projectId"] as const;

export const sessions = new Hono<{ Variables: OriginVars }>();

function refuseStatus(body: Record<string, unknown>): void {
  for (const field of ["status", "reason", "exitCode", "timeline"]) {
    if (field in body) throw invalid(`${field} is not set through the API: it comes from the edge's presence events.`);
  }
}

sessions.get("/", (c) => {
  const { limit, offset } = paging(c);
  const where: string[] = [];
  const params: SQLInputValue[] = [];
  const status = oneOf({ status: c.req.query("status") }, "status", SESSION_STATUSES);
  if (status !== undefined) {
    where.push("status = ?");
    params.push(status);
  }
  const projectId = c.req.query("projectId");
  if (projectId !== undefined) {
    where.push("project_id = ?");
    params.push(checkId(projectId, "projectId"));
  }
  const sql = `SELECT * FROM sessions ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY created_at DESC, id LIMIT ? OFFSET ?`;
  const rows = c.get("store").all(sql, ...params, limit, offset);
  return c.json({ sessions: rows.map((r) => sessionJson(r)), limit, offset });
});

sessions.post("/", async (c) => {
  const identity = requireWriter(c);
  const body = await readJson(c);
  refuseStatus(body);
  onlyFields(body, CREATE_FIELDS);
  const id = body.id === undefined ? newId("ses") : checkId(body.id, "id");
  const name = text(body, "name", { max: SESSION_NAME_MAX, nullable: true }) ?? null;
  const projectId = body.projectId === undefined || body.projectId === null ? null : checkId(body.projectId, "projectId");
  const store = c.get("store");
  const now = Date.now();
  const session = store.tx(() => {
    if (projectId && !store.get("SELECT 1 AS x FROM projects WHERE id = ?", projectId)) {
      throw invalid(`projectId ${JSON.stringify(projectId)} does not exist.`);
    }
    if (store.get("SELECT 1 AS x FROM sessions WHERE id = ?", id))
      throw new OutpostError("CONFLICT", `A session with id ${JSON.stringify(id)} already exists.`);
    const timeline: TimelineEntry[] = [{ at: new Date(now).toISOString(), event: "created", status: "pending" }];
    store.run(
      `INSERT INTO sessions (id, project_id, name, status, timeline, created_by, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?)`,
      id,
      projectId,
      name,
      "pending",
      JSON.stringify(timeline),
      identity.email || identity.sub,
      now,
      now,
    );
    const created = sessionJson(store.get("SELECT * FROM sessions WHERE id = ?", id)!);
    store.emit({ type: "session.created", data: created });
    return created;
  });
  c.header("Location", `/api/sessions/${encodeURIComponent(session.id)}`);
  return c.json({ session }, 201);
});

sessions.get("/:id", (c) => {
  const id = checkId(c.req.param("id"), "id");
  const row = c.get("store").get("SELECT * FROM sessions WHERE id = ?", id);
  if (!row) throw notFound("session", id);
  return c.json({ session: sessionJson(row, true) });
});

sessions.get("/:id/timeline", (c) => {
  const id = checkId(c.req.param("id"), "id");
  const row = c.get("store").get("SELECT timeline FROM sessions WHERE id = ?", id);
  if (!row) throw notFound("session", id);
  return c.json({ timeline: JSON.parse(row.timeline as string) as TimelineEntry[] });
});

sessions.patch("/:id", async (c) => {
  requireWriter(c);
  const id = checkId(c.req.param("id"), "id");
  const body = await readJson(c);
  refuseStatus(body);
  onlyFields(body, UPDATE_FIELDS);
  const name = text(body, "name", { max: SESSION_NAME_MAX, nullable: true });
  const projectId = body.projectId === undefined ? undefined : body.projectId === null ? null : checkId(body.projectId, "projectId");
  if (name === undefined && projectId === undefined) throw invalid(`Nothing to change: give ${UPDATE_FIELDS.join(" or ")}.`);
  const store = c.get("store");
  const session = store.tx(() => {
    const current = store.get("SELECT * FROM sessions WHERE id = ?", id);
    if (!current) throw notFound("session", id);
    if (projectId && !store.get("SELECT 1 AS x FROM projects WHERE id = ?", projectId)) {
      throw invalid(`projectId ${JSON.stringify(projectId)} does not exist.`);
    }
    store.run(
      "UPDATE sessions SET name = ?, project_id = ?, updated_at = ? WHERE id = ?",
      name === undefined ? (current.name as string | null) : name,
      projectId === undefined ? (current.project_id as string | null) : projectId,
      Date.now(),
      id,
    );
    const updated = sessionJson(store.get("SELECT * FROM sessions WHERE id = ?", id)!);
    store.emit({ type: "session.updated", data: updated });
    return updated;
  });
  return c.json({ session });
});
