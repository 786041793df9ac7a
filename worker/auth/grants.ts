// Roles granted through the API (members and viewers an owner added), cached per isolate so the hot path stays local.
import { accountStub } from "../../durable-objects/account/index.ts";
import type { Role } from "../../shared/identity.ts";

/** How stale an isolate's copy of the grants may be: a removed grant stops working within this time. */
const GRANTS_TTL_MS = 30_000;

interface CachedGrants {
  roles: Map<string, Role>;
  /** When each grant that ends does so (ms since the epoch): the cache drops it then, not at its next reload. */
  endsAt: Map<string, number>;
  /** The soonest of endsAt, so the hot path checks one number. */
  nextEnd: number;
  fetchedAt: number;
}

let cached: CachedGrants | null = null;
let loading: Promise<Map<string, Role>> | null = null;

function soonest(endsAt: ReadonlyMap<string, number>): number {
  let next = Number.POSITIVE_INFINITY;
  for (const at of endsAt.values()) next = Math.min(next, at);
  return next;
}

/** Drops the grants that have ended since they were cached. */
function dropEnded(c: CachedGrants, now: number): void {
  for (const [email, at] of c.endsAt) {
    if (at > now) continue;
    c.roles.delete(email);
    c.endsAt.delete(email);
  }
  c.nextEnd = soonest(c.endsAt);
}

export async function grantedRoles(env: Env): Promise<ReadonlyMap<string, Role>> {
  const now = Date.now();
  // A copy from the future (a clock that stepped back) is no fresher than a stale one.
  const age = cached ? now - cached.fetchedAt : -1;
  if (cached && age >= 0 && age < GRANTS_TTL_MS) {
    if (cached.nextEnd <= now) dropEnded(cached, now);
    return cached.roles;
  }
  // One load at a time per isolate, however many requests arrive while it runs.
  loading ??= accountStub(env)
    .listGrants()
    .then((grants) => {
      const endsAt = new Map(grants.flatMap((g) => (g.expiresAt === null ? [] : [[g.email, g.expiresAt] as const])));
      cached = { roles: new Map(grants.map((g) => [g.email, g.role] as const)), endsAt, nextEnd: soonest(endsAt), fetchedAt: Date.now() };
      dropEnded(cached, cached.fetchedAt);
      return cached.roles;
    })
    .finally(() => {
      loading = null;
    });
  return loading;
}

/** Applies a change this isolate just made, so its own next request sees it at once; `expiresAt` null: it does not end. */
export function rememberGrant(email: string, role: Role | null, expiresAt: number | null = null): void {
  if (!cached) return;
  if (role) cached.roles.set(email, role);
  else cached.roles.delete(email);
  if (role && expiresAt !== null) cached.endsAt.set(email, expiresAt);
  else cached.endsAt.delete(email);
  cached.nextEnd = soonest(cached.endsAt);
}
