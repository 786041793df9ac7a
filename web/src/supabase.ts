// Supabase Auth through supabase-js, loaded on demand: email and password, magic link, and the project's OAuth providers.
import { createClient, type Session } from "@supabase/supabase-js";

export interface SupabaseAuth {
  /** A current access token (supabase-js renews it ahead of expiry), or null. */
  accessToken(): Promise<string | null>;
  /** Forces a renewal; false when the session is gone. */
  refresh(): Promise<boolean>;
  signInWithPassword(email: string, password: string): Promise<void>;
  /** Sends a magic link that comes back to `redirectTo`. */
  sendMagicLink(email: string, redirectTo: string): Promise<void>;
  /** Leaves for the provider's sign-in page; the session comes back to `redirectTo` in the URL fragment. */
  signInWithOAuth(provider: string, redirectTo: string): Promise<void>;
  /** The OAuth providers the project has enabled, with the names people know them by. */
  providers(): Promise<{ id: string; label: string }[]>;
  signOut(): Promise<void>;
}

/** Providers whose names the Supabase settings endpoint reports but which are not OAuth buttons. */
const NOT_OAUTH = new Set(["email", "phone", "anonymous_users", "saml"]);

export function connectSupabase(url: string, anonKey: string, onChange: (signedIn: boolean) => void): SupabaseAuth {
  const client = createClient(url, anonKey, {
    auth: {
      // Tokens stay in this page's memory only; a magic link or OAuth sign-in arrives in the URL fragment.
      persistSession: false,
      autoRefreshToken: true,
      detectSessionInUrl: true,
      flowType: "implicit",
    },
  });
  let session: Session | null = null;
  client.auth.onAuthStateChange((event, next) => {
    session = next;
    if (event === "SIGNED_OUT") onChange(false);
  });

  const fail = (error: { message: string } | null) => {
    if (error) throw new Error(error.message);
  };

  return {
    async accessToken() {
      const { data } = await client.auth.getSession();
      session = data.session;
      return session?.access_token ?? null;
    },
    async refresh() {
      const { data, error } = await client.auth.refreshSession();
      session = data.session;
      return !error && session !== null;
    },
    async signInWithPassword(email, password) {
      const { error } = await client.auth.signInWithPassword({ email, password });
      fail(error);
    },
    async sendMagicLink(email, redirectTo) {
      const { error } = await client.auth.signInWithOtp({ email, options: { emailRedirectTo: redirectTo, shouldCreateUser: false } });
      fail(error);
    },
    async signInWithOAuth(provider, redirectTo) {
      const { error } = await client.auth.signInWithOAuth({ provider: provider as "github", options: { redirectTo } });
      fail(error);
    },
    async providers() {
      try {
        const res = await fetch(`${url}/auth/v1/settings`, { headers: { apikey: anonKey } });
        if (!res.ok) return [];
        const body = (await res.json()) as { external?: Record<string, boolean> };
        return Object.entries(body.external ?? {})
          .filter(([name, on]) => on && !NOT_OAUTH.has(name))
          .map(([name]) => ({ id: name, label: providerLabel(name) }))
          .sort((a, b) => a.label.localeCompare(b.label));
      } catch {
        return [];
      }
    },
    async signOut() {
      await client.auth.signOut({ scope: "local" });
      session = null;
    },
  };
}

/** A provider's name as people know it. */
function providerLabel(name: string): string {
  const known: Record<string, string> = {
    github: "GitHub",
    gitlab: "GitLab",
    google: "Google",
    apple: "Apple",
    azure: "Microsoft",
    bitbucket: "Bitbucket",
    discord: "Discord",
    linkedin_oidc: "LinkedIn",
    slack_oidc: "Slack",
  };
  return known[name] ?? name.charAt(0).toUpperCase() + name.slice(1);
}
