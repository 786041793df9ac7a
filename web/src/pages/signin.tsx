// Signing in: the owner's enrollment link where Outpost is its own issuer, Supabase Auth (password, magic link, OAuth) where it is used.
import { useEffect, useState } from "preact/hooks";
import { adoptSupabase, enroll, rememberReturn, supabaseAuth, type EdgeConfig } from "../auth.ts";
import { errorMessage } from "../api.ts";
import { navigate } from "../lib.ts";
import type { SupabaseAuth } from "../supabase.ts";
import { Frame, Notice, Spinner } from "../ui.tsx";

/** Accepts a whole enrollment link (…/enroll#token=…) or the bare token. */
function tokenFrom(input: string): string {
  const text = input.trim();
  const hash = text.includes("#") ? text.slice(text.indexOf("#") + 1) : "";
  return new URLSearchParams(hash).get("token") ?? text;
}

function EnrollmentForm() {
  const [link, setLink] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const message = await enroll(tokenFrom(link)).catch((err: unknown) => errorMessage(err));
    setBusy(false);
    if (message) setError(message);
    else if (location.pathname === "/enroll") navigate("/", { replace: true });
  };
  return (
    <form class="card stack" onSubmit={(e) => void submit(e)}>
      <p>
        Open the single-use enrollment link on this phone: <code>npm start</code> prints one for the first owner, and owners can create more on the Devices
        page. Or paste it here.
      </p>
      <label for="enroll-link">Enrollment link</label>
      <input
        id="enroll-link"
        value={link}
        onInput={(e) => setLink((e.target as HTMLInputElement).value)}
        placeholder="https://…/enroll#token=…"
        autocomplete="off"
        spellcheck={false}
        required
      />
      {error && <Notice tone="error">{error}</Notice>}
      <button type="submit" class="primary" disabled={busy}>
        {busy ? "Signing in…" : "Sign in"}
      </button>
    </form>
  );
}

function SupabaseForms() {
  const [sb, setSb] = useState<SupabaseAuth | null>(null);
  const [providers, setProviders] = useState<{ id: string; label: string }[]>([]);
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<{ tone: "error" | "success"; text: string } | null>(null);

  useEffect(() => {
    supabaseAuth().then(
      async (client) => {
        setSb(client);
        setProviders(await client.providers());
      },
      (err: unknown) => setMessage({ tone: "error", text: errorMessage(err) }),
    );
  }, []);

  const run = async (action: () => Promise<void>, success?: string) => {
    setBusy(true);
    setMessage(null);
    try {
      await action();
      if (success) setMessage({ tone: "success", text: success });
    } catch (err) {
      setMessage({ tone: "error", text: errorMessage(err) });
    } finally {
      setBusy(false);
    }
  };

  if (!sb) return message ? <Notice tone="error">{message.text}</Notice> : <Spinner label="Loading sign-in…" />;
  return (
    <div class="stack">
      <form
        class="card stack"
        onSubmit={(e) => {
          e.preventDefault();
          void run(async () => {
            await sb.signInWithPassword(email, password);
            await adoptSupabase();
          });
        }}
      >
        <label for="email">Email</label>
        <input id="email" type="email" autocomplete="username" required value={email} onInput={(e) => setEmail((e.target as HTMLInputElement).value)} />
        <label for="password">Password</label>
        <input
          id="password"
          type="password"
          autocomplete="current-password"
          value={password}
          onInput={(e) => setPassword((e.target as HTMLInputElement).value)}
        />
        <button type="submit" class="primary" disabled={busy || !password}>
          Sign in
        </button>
        <button
          type="button"
          disabled={busy || !email}
          onClick={() => void run(() => sb.sendMagicLink(email, rememberReturn()), `Check ${email} for a sign-in link; open it on this phone.`)}
        >
          Email me a sign-in link
        </button>
      </form>
      {providers.length > 0 && (
        // biome-ignore lint/a11y/useSemanticElements: a <fieldset> would change the card's look; the group role names it for screen readers.
        <div class="card stack" role="group" aria-label="Sign in with another account">
          {providers.map((p) => (
            <button type="button" key={p.id} disabled={busy} onClick={() => void run(() => sb.signInWithOAuth(p.id, rememberReturn()))}>
              Continue with {p.label}
            </button>
          ))}
        </div>
      )}
      {message && <Notice tone={message.tone}>{message.text}</Notice>}
    </div>
  );
}

export function SignIn(props: { config: EdgeConfig; reason?: string }) {
  const supabase = props.config.provider === "supabase";
  return (
    <Frame title="Sign in">
      {props.reason && <Notice tone="info">{props.reason}</Notice>}
      {supabase && props.config.supabaseAnonKey ? (
        <>
          <SupabaseForms />
          <details class="more">
            <summary>Have an enrollment link instead?</summary>
            <EnrollmentForm />
          </details>
        </>
      ) : (
        <>
          {supabase && <Notice tone="error">This gateway uses Supabase but publishes no anon key (SUPABASE_ANON_KEY); use an enrollment link.</Notice>}
          <EnrollmentForm />
        </>
      )}
    </Frame>
  );
}

/** Shown while the app finds out whether this browser is signed in. */
export function Starting(props: { message?: string; onRetry?: () => void }) {
  if (!props.message)
    return (
      <Frame title="Outpost">
        <Spinner label="Signing in…" />
      </Frame>
    );
  return (
    <Frame title="Outpost">
      <Notice tone="error">{props.message}</Notice>
      {props.onRetry && (
        <button type="button" class="primary" onClick={props.onRetry}>
          Try again
        </button>
      )}
    </Frame>
  );
}
