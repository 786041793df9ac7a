// What `npm start` reports once the stack is up: readiness, and a single-use sign-in link for the first owner.
import { OUTPOST_SIGNING_KEY, OWNER_EMAILS, privateJwk } from "../shared/settings/index.ts";
import { mintEnrollmentLink } from "../shared/enrollment.ts";

interface ReadyBody {
  ready?: boolean;
  checks?: Record<string, { ok: boolean; problems?: string[] }>;
}

export async function readiness(url: string, warn: (text: string) => string): Promise<string> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    const body = (await res.json()) as ReadyBody;
    if (body.ready) return "ready";
    const problems = Object.entries(body.checks ?? {}).flatMap(([name, check]) => (check.ok ? [] : (check.problems ?? []).map((p) => `${name}: ${p}`)));
    return warn(`NOT READY: ${problems.join("; ") || `status ${res.status}`}`);
  } catch (err) {
    return `unknown (${err instanceof Error ? err.message : String(err)})`;
  }
}

/** Like Jupyter's token URL: a single-use link that signs this browser in as the first owner. */
export async function enrollmentLink(vars: Record<string, string>, warn: (text: string) => string): Promise<string | null> {
  const owners = OWNER_EMAILS.type.parse((vars.OWNER_EMAILS ?? "").trim());
  const owner = owners.ok ? owners.value[0] : undefined;
  if (!owner || !vars.OUTPOST_SIGNING_KEY || !vars.PUBLIC_URL) return null;
  const key = privateJwk.parse(vars.OUTPOST_SIGNING_KEY.trim());
  if (!key.ok) return warn(`no link: ${OUTPOST_SIGNING_KEY.name} ${key.reason}`);
  try {
    const link = await mintEnrollmentLink({ signingKey: key.value, publicUrl: vars.PUBLIC_URL, email: owner });
    return `${link.url}\n                 (single use, for ${owner}, valid ${Math.round(link.expiresIn / 60)} min)`;
  } catch (err) {
    return warn(`no link: ${err instanceof Error ? err.message : String(err)}`);
  }
}
