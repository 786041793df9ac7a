// /api/access, the access list: settings-defined roles (read only here) plus member and viewer grants owners manage at runtime, each with an optional end.
import { Hono } from "hono";
import { readFields } from "../body.ts";
import { accountStub, type GrantRecord } from "../../durable-objects/account/index.ts";
import { rememberGrant } from "../auth/grants.ts";
import { authConfigOf, requireAuth } from "../auth/middleware.ts";
import { OutpostError } from "../../shared/errors.ts";
import { requiredString } from "../../shared/fields.ts";
import { GRANTABLE_ROLES, MAX_GRANT_DAYS, type AccessEntry, type AccessList, type GrantableRole, type GrantResponse } from "../../shared/identity.ts";
import type { AppEnv } from "../types.ts";

const EMAIL = /^[^\s@,]{1,64}@[^\s@,]{1,190}$/;

export const access = new Hono<AppEnv>();

const isGrantable = (role: string): role is GrantableRole => (GRANTABLE_ROLES as readonly string[]).includes(role);

/** RFC 3339's date-time (ISO 8601 with a time zone): a time without one would mean a different instant to each reader. */
const DATE_TIME = /^(\d{4}-\d{2}-\d{2})T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/i;
const MAX_GRANT_MS = MAX_GRANT_DAYS * 86_400_000;

/** When the grant ends (ms since the epoch), null for never; anything else is a 400 that names what is wrong. */
function grantEnd(fields: Record<string, unknown>, now: number): number | null {
  const value = fields.expiresAt;
  if (value === undefined || value === null) return null;
  const match = typeof value === "string" ? DATE_TIME.exec(value) : null;
  const at = match ? Date.parse(value as string) : Number.NaN;
  // Date.parse rolls 2025-02-30 over to March: the date must survive the round trip in its own time zone.
  const offsetMs = match?.[2]?.toUpperCase() === "Z" ? 0 : offsetOf(match?.[2] ?? "");
  if (!match || !Number.isFinite(at) || new Date(at + offsetMs).toISOString().slice(0, 10) !== match[1]) {
    throw new OutpostError("BAD_REQUEST", '"expiresAt" must be an ISO 8601 date and time with a time zone, e.g. 2025-07-01T18:00:00Z, or null.');
  }
  if (at <= now) throw new OutpostError("BAD_REQUEST", '"expiresAt" is not in the future: a grant must end later than now.');
  if (at > now + MAX_GRANT_MS) throw new OutpostError("BAD_REQUEST", `"expiresAt" is more than ${MAX_GRANT_DAYS} days away; grants end within a year.`);
  return at;
}

function offsetOf(zone: string): number {
  const sign = zone.startsWith("-") ? -1 : 1;
  return sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6))) * 60_000;
}

const grantedEntry = (g: GrantRecord): Extract<AccessEntry, { source: "granted" }> => ({
  source: "granted",
  email: g.email,
  role: g.role,
  grantedBy: g.grantedBy,
  grantedAt: g.grantedAt,
  expiresAt: g.expiresAt === null ? null : new Date(g.expiresAt).toISOString(),
});

access.get("/", requireAuth({ ownerOnly: true }), async (c) => {
  const auth = authConfigOf(c);
  const grants = await accountStub(c.env).listGrants();
  const fromSettings = [...auth.roles].map(([email, role]): AccessEntry => ({ source: "settings", email, role, expiresAt: null }));
  const granted = grants.filter((g) => !auth.roles.has(g.email)).map(grantedEntry);
  c.header("Cache-Control", "no-store");
  return c.json({ entries: [...fromSettings, ...granted] } satisfies AccessList);
});

function emailParam(raw: string): string {
  // Hono has already decoded the parameter once; decoding again would turn "%E0a" into a 500.
  const email = raw.trim().toLowerCase();
  if (!EMAIL.test(email)) throw new OutpostError("BAD_REQUEST", "Not an email address.");
  return email;
}

access.put("/:email", requireAuth({ ownerOnly: true }), async (c) => {
  const auth = authConfigOf(c);
  const email = emailParam(c.req.param("email"));
  const fields = await readFields(c, 1024);
  const role = requiredString(fields, "role", 16);
  if (!isGrantable(role)) {
    throw new OutpostError("BAD_REQUEST", '"role" must be "member" or "viewer"; owners are set in OWNER_EMAILS.');
  }
  const expiresAt = grantEnd(fields, Date.now());
  if (auth.roles.has(email)) {
    throw new OutpostError("CONFLICT", "This email's role is set in the settings; change it there.");
  }
  const grant = await accountStub(c.env).setGrant(email, role, c.get("identity").email, expiresAt);
  if (!grant) throw new OutpostError("CONFLICT", "The access list is full; remove a grant or use the settings.");
  rememberGrant(email, role, grant.expiresAt);
  return c.json({ entry: grantedEntry(grant) } satisfies GrantResponse);
});

access.delete("/:email", requireAuth({ ownerOnly: true }), async (c) => {
  const auth = authConfigOf(c);
  const email = emailParam(c.req.param("email"));
  if (auth.roles.has(email)) {
    throw new OutpostError("CONFLICT", "This email's role is set in the settings; change it there.");
  }
  if (!(await accountStub(c.env).removeGrant(email))) throw new OutpostError("NOT_FOUND", "No grant for this email.");
  rememberGrant(email, null);
  return c.json({ removed: true });
});
