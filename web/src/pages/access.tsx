// Who may use the gateway (owners): the settings' entries and the grants, when each grant ends, granting a role for a while, removing one.
import { useState } from "preact/hooks";
import { api, errorMessage, useApi } from "../api.ts";
import { auth } from "../auth.ts";
import { stamp, useNow, useStore } from "../lib.ts";
import { Badge, Frame, Notice, Spinner, When } from "../ui.tsx";
import { GRANTABLE_ROLES, MAX_GRANT_DAYS, type AccessEntry, type AccessList, type GrantableRole, type GrantRequest } from "../../../shared/identity.ts";
import { PATHS } from "../../../shared/paths.ts";

const HOUR = 3_600_000;
/** How long a new grant runs; "date" asks for the exact end. */
const DURATIONS = [
  { value: "never", label: "No end" },
  { value: String(HOUR), label: "1 hour" },
  { value: String(24 * HOUR), label: "1 day" },
  { value: String(7 * 24 * HOUR), label: "1 week" },
  { value: String(30 * 24 * HOUR), label: "30 days" },
  { value: "date", label: "On a date…" },
] as const;
/** A grant ending within this is marked as ending soon. */
const SOON_MS = 24 * HOUR;

const accessPath = (email: string) => `${PATHS.access}/${encodeURIComponent(email)}`;

/** When the entry ends, in words and as a date; what the list shows for every entry. */
function Ends(props: { entry: AccessEntry; now: number }) {
  const { expiresAt } = props.entry;
  if (!expiresAt) return <span data-testid="ends">{props.entry.source === "settings" ? "Set in the settings, no end" : "No end date"}</span>;
  const soon = Date.parse(expiresAt) - props.now < SOON_MS;
  return (
    <span data-testid="ends" class={soon ? "soon" : ""}>
      Ends {stamp(expiresAt)} (<When at={expiresAt} now={props.now} />)
    </span>
  );
}

function EntryRow(props: { entry: AccessEntry; now: number; onChanged: () => void }) {
  const { entry, now } = props;
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const remove = async () => {
    setBusy(true);
    setError(null);
    try {
      await api(accessPath(entry.email), { method: "DELETE" });
      props.onChanged();
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <li class="card" data-testid="access-entry" data-email={entry.email} data-ends={entry.expiresAt ?? "never"}>
      <div class="row">
        <strong>{entry.email}</strong>
        <span class="badges">
          <Badge tone={entry.role === "viewer" ? "muted" : "ok"}>{entry.role}</Badge>
          {entry.source === "settings" && <Badge tone="idle">settings</Badge>}
        </span>
      </div>
      <p class="meta">
        <Ends entry={entry} now={now} />
        {entry.source === "granted" && (
          <span>
            Granted by {entry.grantedBy} <When at={entry.grantedAt} now={now} />
          </span>
        )}
      </p>
      {error && <Notice tone="error">{error}</Notice>}
      {entry.source === "granted" && (
        <div class="actions">
          <button type="button" class="ghost" disabled={busy} onClick={() => void remove()} aria-label={`Remove ${entry.email}`}>
            {busy ? "Removing…" : "Remove"}
          </button>
        </div>
      )}
    </li>
  );
}

/** The end a grant form asks for, as the API takes it; null for no end. */
function endOf(duration: string, date: string, now: number): string | null {
  if (duration === "never") return null;
  if (duration === "date") return date ? new Date(date).toISOString() : "";
  return new Date(now + Number(duration)).toISOString();
}

function GrantForm(props: { onGranted: () => void }) {
  const [email, setEmail] = useState("");
  const [role, setRole] = useState<GrantableRole>("viewer");
  const [duration, setDuration] = useState<string>("never");
  const [date, setDate] = useState("");
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    const body: GrantRequest = { role, expiresAt: endOf(duration, date, Date.now()) };
    try {
      await api(accessPath(email.trim()), { method: "PUT", body });
      setEmail("");
      props.onGranted();
    } catch (err) {
      setError(errorMessage(err));
    }
  };
  return (
    <form class="card stack" onSubmit={(e) => void submit(e)}>
      <label for="grant-email">Email</label>
      <input
        id="grant-email"
        type="email"
        required
        value={email}
        onInput={(e) => setEmail((e.target as HTMLInputElement).value)}
        placeholder="name@example.com"
        autocomplete="email"
      />
      <label for="grant-role">Role</label>
      <select id="grant-role" value={role} onChange={(e) => setRole((e.target as HTMLSelectElement).value as GrantableRole)}>
        {GRANTABLE_ROLES.map((r) => (
          <option key={r} value={r}>
            {r === "viewer" ? "Viewer (reads only)" : "Member (reads and writes)"}
          </option>
        ))}
      </select>
      <label for="grant-ends">Ends</label>
      <select id="grant-ends" value={duration} onChange={(e) => setDuration((e.target as HTMLSelectElement).value)}>
        {DURATIONS.map((d) => (
          <option key={d.value} value={d.value}>
            {d.label}
          </option>
        ))}
      </select>
      {duration === "date" && (
        <>
          <label for="grant-date">End date and time (within {MAX_GRANT_DAYS} days)</label>
          <input id="grant-date" type="datetime-local" required value={date} onInput={(e) => setDate((e.target as HTMLInputElement).value)} />
        </>
      )}
      <button type="submit">Grant access</button>
      {error && <Notice tone="error">{error}</Notice>}
    </form>
  );
}

export function AccessPage() {
  const state = useStore(auth);
  const now = useNow(10_000);
  const [version, setVersion] = useState(0);
  const owner = state.status === "signed-in" && state.user.role === "owner";
  const [result, reload] = useApi<AccessList>(owner ? PATHS.access : null, version);
  const changed = () => setVersion((v) => v + 1);
  if (!owner) {
    return (
      <Frame title="Access">
        <Notice>Only an owner can see and change who has access.</Notice>
      </Frame>
    );
  }
  const entries = result.data?.entries ?? [];
  return (
    <Frame title="Access">
      <p class="sub">Who may use this gateway. Grants you add here can end on their own; the settings' entries change only with a redeploy.</p>
      {result.state === "error" && (
        <Notice tone="error">
          {result.error.message}{" "}
          <button type="button" class="ghost small" onClick={reload}>
            Try again
          </button>
        </Notice>
      )}
      {result.state === "loading" && !result.data && <Spinner label="Loading the access list…" />}
      {result.data && (
        <ul class="list" data-testid="access-list">
          {entries.map((entry) => (
            <EntryRow key={`${entry.source}:${entry.email}`} entry={entry} now={now} onChanged={changed} />
          ))}
        </ul>
      )}
      <h2>Grant access</h2>
      <GrantForm onGranted={changed} />
    </Frame>
  );
}
