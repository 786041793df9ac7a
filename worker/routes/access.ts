// /api/access, the access list: settings-defined roles (read only here) plus member and viewer grants owners manage at runtime.
import { Hono } from "hono";
import { readFields } from "../body.ts";
import { accountStub } from "../../durable-objects/account/index.ts";
import { rememberGrant } from "../auth/grants.ts";
import { authConfigOf, requireAuth } from "../auth/middleware.ts";
import { OutpostError } from "../../shared/errors.ts";
import { requiredString } from "../../shared/fields.ts";
import { GRANTABLE_ROLES, type GrantableRole } from "../../shared/identity.ts";
import type { AppEnv } from "../types.ts";

const EMAIL = /^[^\s@,]{1,64}@[^\s@,]{1,190}$/;

export const access = new Hono<AppEnv>();

const isGrantable = (role: string): role is GrantableRole => (GRANTABLE_ROLES as readonly string[]).includes(role);

access.get("/", requireAuth({ ownerOnly: true }), async (c) => {
  const auth = authConfigOf(c);
  const grants = await accountStub(c.env).listGrants();
  const fromSettings = [...auth.roles].map(([email, role]) => ({ email, role, source: "settings" as const }));
  const granted = grants.filter((g) => !auth.roles.has(g.email)).map((g) => ({ ...g, source: "granted" as const }));
  c.header("Cache-Control", "no-store");
  return c.json({ entries: [...fromSettings, ...granted] });
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
  const role = requiredString(await readFields(c, 1024), "role", 16);
  if (!isGrantable(role)) {
    throw new OutpostError("BAD_REQUEST", '"role" must be "member" or "viewer"; owners are set in OWNER_EMAILS.');
  }
  if (auth.roles.has(email)) {
    throw new OutpostError("CONFLICT", "This email's role is set in the settings; change it there.");
  }
  const grant = await accountStub(c.env).setGrant(email, role, c.get("identity").email);
  if (!grant) throw new OutpostError("CONFLICT", "The access list is full; remove a grant or use the settings.");
  rememberGrant(email, role);
  return c.json({ entry: { ...grant, source: "granted" } });
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
