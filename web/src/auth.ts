// Who is signed in: the Outpost refresh cookie or Supabase Auth; access tokens live only in memory and are renewed silently.
import { navigate, noteServerDate, Store } from "./lib.ts";
import type { SupabaseAuth } from "./supabase.ts";
import type { ErrorBody } from "../../shared/errors.ts";
import type { BrowserSession, Me, OpenIdConfiguration, Provider, Role } from "../../shared/identity.ts";
import { PATHS } from "../../shared/paths.ts";

export interface EdgeConfig {
  provider: Provider;
  supabaseUrl: string | null;
  supabaseAnonKey: string | null;
}

interface User {
  email: string;
  role: Role;
  /** How this browser signed in: Outpost's own tokens (enrollment link) or a Supabase session. */
  via: Provider;
  deviceId: string | null;
}

export type AuthState =
  | { status: "loading" }
  | { status: "unreachable"; message: string }
  | { status: "signed-out"; config: EdgeConfig; reason?: string }
  | { status: "signed-in"; config: EdgeConfig; user: User };

export const auth = new Store<AuthState>({ status: "loading" });

/** Where to go back to after a sign-in that leaves the page (magic link, OAuth); a path, never a token. */
const RETURN_KEY = "outpost.return";
const REFRESH_EARLY_S = 60;

let config: EdgeConfig | null = null;
let token: { value: string; expiresAt: number } | null = null;
let refreshing: Promise<boolean> | null = null;
let timer: ReturnType<typeof setTimeout> | undefined;
let supabase: SupabaseAuth | null = null;

async function post(path: string, init: RequestInit = {}): Promise<Response> {
  const res = await fetch(path, { method: "POST", credentials: "same-origin", redirect: "manual", cache: "no-store", ...init });
  noteServerDate(res.headers.get("date"));
  return res;
}

async function loadConfig(): Promise<EdgeConfig> {
  const res = await fetch(PATHS.openidConfiguration, { redirect: "manual", cache: "no-store" });
  if (!res.ok) throw new Error(`The edge answered ${res.status}.`);
  const body = (await res.json()) as Partial<OpenIdConfiguration>;
  return {
    provider: body.auth_provider === "supabase" ? "supabase" : "outpost",
    supabaseUrl: body.supabase_url ?? null,
    supabaseAnonKey: body.supabase_anon_key ?? null,
  };
}

function adoptOutpost(body: BrowserSession): void {
  token = { value: body.access_token, expiresAt: Date.now() + body.expires_in * 1000 };
  scheduleRenew(Math.max(5, body.expires_in - REFRESH_EARLY_S));
  auth.set({ status: "signed-in", config: config!, user: { email: body.email, role: body.role, via: "outpost", deviceId: body.device_id ?? null } });
}

/** Renews ahead of expiry; an unreachable edge is retried, a refused refresh signs out. */
function scheduleRenew(seconds: number): void {
  clearTimeout(timer);
  timer = setTimeout(() => {
    renewOutpost().then(
      (ok) => ok || signedOut("Your session has ended. Sign in again to continue."),
      () => scheduleRenew(30),
    );
  }, seconds * 1000);
}

/**
 * Trades the HttpOnly refresh cookie for a new access token. Refresh tokens rotate and a reused one revokes the device,
 * so refreshes are serialised, within this tab and (with Web Locks) across tabs. Throws only when the edge is unreachable.
 */
function renewOutpost(): Promise<boolean> {
  refreshing ??= (async () => {
    const run = async () => {
      const res = await post(PATHS.refresh);
      if (!res.ok) return false;
      adoptOutpost((await res.json()) as BrowserSession);
      return true;
    };
    try {
      return navigator.locks ? await navigator.locks.request("outpost-refresh", run) : await run();
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

/** Starts the app: reads the edge's settings, redeems an enrollment link, or resumes a session silently. */
export async function boot(): Promise<void> {
  try {
    config ??= await loadConfig();
    if (location.pathname === "/enroll" && location.hash.includes("token=")) {
      const enrollment = new URLSearchParams(location.hash.slice(1)).get("token") ?? "";
      history.replaceState(null, "", "/enroll");
      const message = await enroll(enrollment);
      if (!message) return navigate("/", { replace: true });
      if (await renewOutpost()) return navigate("/", { replace: true });
      return signedOut(message);
    }
    if (await renewOutpost()) return;
    if (config.provider === "supabase" && (await resumeSupabase())) return;
    signedOut();
  } catch {
    auth.set({ status: "unreachable", message: "The edge cannot be reached. Check your connection and try again." });
  }
}

/** Redeems a single-use enrollment token; returns an error message, or null when signed in. */
export async function enroll(enrollmentToken: string): Promise<string | null> {
  if (!/^[\w-]+\.[\w-]+\.[\w-]+$/.test(enrollmentToken)) return "That is not an enrollment link.";
  const res = await post(PATHS.enroll, { headers: { authorization: `Bearer ${enrollmentToken}` } });
  if (res.ok) {
    adoptOutpost((await res.json()) as BrowserSession);
    return null;
  }
  const body = (await res.json().catch(() => null)) as Partial<ErrorBody> | null;
  return res.status === 401
    ? "This enrollment link has expired or was already used. Ask an owner for a new one."
    : (body?.error?.message ?? `Enrollment failed (${res.status}).`);
}

function signedOut(reason?: string): void {
  token = null;
  clearTimeout(timer);
  auth.set(config ? { status: "signed-out", config, ...(reason ? { reason } : {}) } : { status: "loading" });
}

// --- Supabase: supabase-js is loaded only on deployments that use it.

export async function supabaseAuth(): Promise<SupabaseAuth> {
  if (!config?.supabaseUrl || !config.supabaseAnonKey) throw new Error("This gateway has no Supabase project configured (SUPABASE_ANON_KEY).");
  if (!supabase) {
    const { connectSupabase } = await import("./supabase.ts");
    supabase = connectSupabase(config.supabaseUrl, config.supabaseAnonKey, (signedIn) => {
      if (!signedIn && auth.get().status === "signed-in" && currentVia() === "supabase") signedOut("You were signed out.");
    });
  }
  return supabase;
}

function currentVia(): Provider | null {
  const s = auth.get();
  return s.status === "signed-in" ? s.user.via : null;
}

/** After a magic link or OAuth redirect the session arrives in the URL; supabase-js reads it. */
async function resumeSupabase(): Promise<boolean> {
  if (!config?.supabaseAnonKey) return false;
  const sb = await supabaseAuth();
  if (!(await sb.accessToken())) return false;
  return adoptSupabase();
}

/** Asks the edge who the Supabase user is (role from the access list); refuses users who are not on it. */
export async function adoptSupabase(): Promise<boolean> {
  const sb = await supabaseAuth();
  const access = await sb.accessToken();
  if (!access) return false;
  const res = await fetch(PATHS.me, { headers: { authorization: `Bearer ${access}` }, redirect: "manual", cache: "no-store" });
  if (!res.ok) {
    await sb.signOut();
    signedOut(res.status === 403 ? "This account is not allowed on this gateway." : "Sign-in failed; try again.");
    return true;
  }
  const me = (await res.json()) as Me;
  auth.set({ status: "signed-in", config: config!, user: { email: me.email, role: me.role, via: "supabase", deviceId: me.deviceId } });
  const back = sessionStorage.getItem(RETURN_KEY);
  sessionStorage.removeItem(RETURN_KEY);
  if (back?.startsWith("/")) navigate(back, { replace: true });
  return true;
}

/** Remembers the page to come back to, before leaving for a magic link or an OAuth provider. */
export function rememberReturn(): string {
  sessionStorage.setItem(RETURN_KEY, location.pathname + location.hash);
  return `${location.origin}${location.pathname}`;
}

// --- for API calls

/** A current access token, renewed first when it is about to expire; null when signed out. */
export async function accessToken(): Promise<string | null> {
  if (currentVia() === "supabase") return (await supabaseAuth()).accessToken();
  if (token && token.expiresAt - Date.now() > 30_000) return token.value;
  if (!token) return null;
  return (await renewOutpost()) ? token.value : null;
}

/** Called when the edge refused a token: renew once, and sign out (staying on this page) if that fails. */
export async function renewAfterRefusal(): Promise<boolean> {
  const ok = currentVia() === "supabase" ? await (await supabaseAuth()).refresh() : await renewOutpost().catch(() => false);
  if (!ok) signedOut("Your session has ended. Sign in again to continue.");
  return ok;
}

export async function signOut(): Promise<void> {
  if (currentVia() === "supabase") await supabase?.signOut();
  else await post(PATHS.logout).catch(() => undefined);
  signedOut();
}
