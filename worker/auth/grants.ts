// Roles granted through the API (members and viewers an owner added), cached per isolate so the hot path stays local.
import { accountStub } from "../../durable-objects/account/index.ts";
import type { Role } from "../../shared/identity.ts";

/** How stale an isolate's copy of the grants may be: a removed grant stops working within this time. */
const GRANTS_TTL_MS = 30_000;

let cached: { roles: Map<string, Role>; fetchedAt: number } | null = null;
let loading: Promise<Map<string, Role>> | null = null;

export async function grantedRoles(env: Env): Promise<ReadonlyMap<string, Role>> {
  if (cached && Date.now() - cached.fetchedAt < GRANTS_TTL_MS) return cached.roles;
  // One load at a time per isolate, however many requests arrive while it runs.
  loading ??= accountStub(env)
    .listGrants()
    .then((grants) => {
      const roles = new Map(grants.map((g) => [g.email, g.role] as const));
      cached = { roles, fetchedAt: Date.now() };
      return roles;
    })
    .finally(() => {
      loading = null;
    });
  return loading;
}

/** Applies a change this isolate just made, so its own next request sees it at once. */
export function rememberGrant(email: string, role: Role | null): void {
  if (!cached) return;
  if (role) cached.roles.set(email, role);
  else cached.roles.delete(email);
}
