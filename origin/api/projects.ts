// /api/projects: list, create, read and update the projects that sessions and tasks belong to.
import { Hono } from "hono";
import { newId, projectJson, type Row } from "../store.ts";
import { checkId, invalid, notFound, onlyFields, paging, readJson, requireWriter, text, type OriginVars } from "./validate.ts";

const FIELDS = ["name", "description"] as const;

export const projects = new Hono<{ Variables: OriginVars }>();

projects.get("/", (c) => {
  const { limit, offset } = paging(c);
  const store = c.get("store");
  const q = c.req.query("q")?.trim();
  const rows = q
    ? store.all("SELECT * FROM projects WHERE instr(lower(name), lower(?)) > 0 ORDER BY created_at DESC, id LIMIT ? OFFSET ?", q, limit, offset)
    : store.all("SELECT * FROM projects ORDER BY created_at DESC, id LIMIT ? OFFSET ?", limit, offset);
  return c.json({ projects: rows.map(projectJson), limit, offset });
});

projects.post("/", async (c) => {
  const identity = requireWriter(c);
  const body = await readJson(c);
  onlyFields(body, FIELDS);
  const name = text(body, "name", { required: true, max: 200 })!;
  const description = text(body, "description", { max: 10_000 }) ?? "";
  const store = c.get("store");
  const now = Date.now();
  const row = store.tx(() => {
    const id = newId("prj");
    store.run(
      "INSERT INTO projects (id, name, description, created_by, created_at, updated_at) VALUES (?,?,?,?,?,?)",
      id,
      name,
      description,
      identity.email || identity.sub,
      now,
      now,
    );
    const created = projectJson(store.get("SELECT * FROM projects WHERE id = ?", id)!);
    store.emit({ type: "project.created", data: created });
    return created;
  });
  c.header("Location", `/api/projects/${row.id}`);
  return c.json({ project: row }, 201);
});

projects.get("/:id", (c) => {
  const id = checkId(c.req.param("id"), "id");
  const store = c.get("store");
  const row = store.get("SELECT * FROM projects WHERE id = ?", id);
  if (!row) throw notFound("project", id);
  const counts = store.get(
    `SELECT (SELECT COUNT(*) FROM tasks WHERE project_id = ?1) AS tasks,
            (SELECT COUNT(*) FROM sessions WHERE project_id = ?1) AS sessions`,
    id,
  ) as Row;
  return c.json({ project: { ...projectJson(row), taskCount: counts.tasks as number, sessionCount: counts.sessions as number } });
});

projects.patch("/:id", async (c) => {
  requireWriter(c);
  const id = checkId(c.req.param("id"), "id");
  const body = await readJson(c);
  onlyFields(body, FIELDS);
  const name = text(body, "name", { required: body.name !== undefined, max: 200 });
  const description = text(body, "description", { max: 10_000 });
  if (name === undefined && description === undefined) throw invalid(`Nothing to change: give ${FIELDS.join(" or ")}.`);
  const store = c.get("store");
  const row = store.tx(() => {
    const current = store.get("SELECT * FROM projects WHERE id = ?", id);
    if (!current) throw notFound("project", id);
    store.run(
      "UPDATE projects SET name = ?, description = ?, updated_at = ? WHERE id = ?",
      name ?? (current.name as string),
      description ?? (current.description as string),
      Date.now(),
      id,
    );
    const updated = projectJson(store.get("SELECT * FROM projects WHERE id = ?", id)!);
    store.emit({ type: "project.updated", data: updated });
    return updated;
  });
  return c.json({ project: row });
});
