// Devices signed in to the gateway (CLIs and browsers): the list, revoking one, and owners' enrollment links.
import { useState } from "preact/hooks";
import { api, errorMessage, useApi } from "../api.ts";
import { auth, signOut } from "../auth.ts";
import { platformName, useNow, useStore } from "../lib.ts";
import { Badge, Frame, Notice, Spinner, When } from "../ui.tsx";
import type { DeviceList, DeviceRecord, OriginLinkView } from "../../../shared/api-types.ts";
import type { EnrollLink } from "../../../shared/identity.ts";
import { devicePath, PATHS } from "../../../shared/paths.ts";

function DeviceRow(props: {
  d: DeviceRecord;
  /** The origin link this device's credential holds open (`outpost origin` on that computer), if any. */
  link: OriginLinkView | undefined;
  current: boolean;
  canRevoke: boolean;
  showOwner: boolean;
  now: number;
  onRevoked: () => void;
}) {
  const { d, now } = props;
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const label = d.hostname || d.name || (d.kind === "cli" ? "Command line" : "Browser");
  const revoke = async () => {
    setBusy(true);
    setError(null);
    try {
      await api(devicePath(d.id), { method: "DELETE" });
      if (props.current) return void signOut();
      props.onRevoked();
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusy(false);
      setConfirming(false);
    }
  };
  return (
    <li class={`card device ${d.revokedAt ? "revoked" : ""}`} data-testid="device" data-device={d.id} data-revoked={String(d.revokedAt !== null)}>
      <div class="row">
        <strong>{label}</strong>
        <span class="badges">
          {props.current && <Badge tone="ok">This browser</Badge>}
          {d.revokedAt ? <Badge tone="muted">Revoked</Badge> : d.kind === "cli" && <Badge tone="idle">CLI</Badge>}
          {props.link && !d.revokedAt && <Badge tone="ok">Origin linked</Badge>}
        </span>
      </div>
      <p class="sub">
        {platformName(d.platform, d.arch) || "unknown platform"}
        {props.showOwner ? ` · ${d.email}` : ""}
      </p>
      <p class="meta">
        <span>
          Signed in <When at={d.createdAt} now={now} />
        </span>
        {d.revokedAt ? (
          <span>
            Revoked <When at={d.revokedAt} now={now} />
          </span>
        ) : (
          <span>
            Last used <When at={d.lastSeenAt} now={now} />
          </span>
        )}
        {props.link && !d.revokedAt && (
          <span data-testid="device-link">
            Origin linked <When at={props.link.connectedAt} now={now} />
          </span>
        )}
      </p>
      {error && <Notice tone="error">{error}</Notice>}
      {props.canRevoke && !d.revokedAt && (
        <div class="actions">
          {confirming ? (
            <>
              <button type="button" class="danger" disabled={busy} onClick={() => void revoke()}>
                {busy ? "Revoking…" : `Yes, revoke ${label}`}
              </button>
              <button type="button" class="ghost" disabled={busy} onClick={() => setConfirming(false)}>
                Cancel
              </button>
            </>
          ) : (
            <button type="button" class="ghost" onClick={() => setConfirming(true)} aria-label={`Revoke ${label}`}>
              Revoke
            </button>
          )}
        </div>
      )}
    </li>
  );
}

function InviteForm() {
  const [email, setEmail] = useState("");
  const [result, setResult] = useState<{ url?: string; error?: string } | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setResult(null);
    try {
      setResult(await api<EnrollLink>(PATHS.enrollLinks, { method: "POST", body: { email } }));
    } catch (err) {
      setResult({ error: errorMessage(err) });
    }
  };
  return (
    <form class="card stack" onSubmit={(e) => void submit(e)}>
      <label for="invite-email">Enrollment link for</label>
      <input
        id="invite-email"
        type="email"
        required
        value={email}
        onInput={(e) => setEmail((e.target as HTMLInputElement).value)}
        placeholder="name@example.com"
        autocomplete="email"
      />
      <button type="submit">Create a single-use link</button>
      {result?.error && <Notice tone="error">{result.error}</Notice>}
      {result?.url && (
        <Notice tone="success">
          Send this link to its owner (it works once, for an hour):{" "}
          <input class="copy" readOnly value={result.url} aria-label="Enrollment link" onFocus={(e) => (e.target as HTMLInputElement).select()} />
        </Notice>
      )}
    </form>
  );
}

export function DevicesPage() {
  const state = useStore(auth);
  const now = useNow(10_000);
  const [version, setVersion] = useState(0);
  const [result, reload] = useApi<DeviceList>(PATHS.devices, version);
  const user = state.status === "signed-in" ? state.user : null;
  const owner = user?.role === "owner";
  const list = result.data?.devices ?? [];
  const active = list.filter((d) => !d.revokedAt);
  const revoked = list.filter((d) => d.revokedAt);
  const links = result.data?.originLinks ?? [];
  // Links whose credential names no device (OUTPOST_TOKEN, a Supabase token): listed on their own; revoking the
  // token's user or device is how they end.
  const unattached = links.filter((l) => !l.deviceId || !list.some((d) => d.id === l.deviceId));
  const row = (d: DeviceRecord) => (
    <DeviceRow
      key={d.id}
      d={d}
      link={links.find((l) => l.deviceId === d.id)}
      now={now}
      current={d.id === result.data?.current}
      canRevoke={owner || d.email === user?.email}
      showOwner={owner}
      onRevoked={() => setVersion((v) => v + 1)}
    />
  );
  return (
    <Frame title="Devices">
      <p class="sub">{owner ? "Every computer and browser signed in to this gateway." : "The computers and browsers you signed in with."}</p>
      {result.state === "error" && (
        <Notice tone="error">
          {result.error.message}{" "}
          <button type="button" class="ghost small" onClick={reload}>
            Try again
          </button>
        </Notice>
      )}
      {result.state === "loading" && !result.data && <Spinner label="Loading devices…" />}
      {result.data && (list.length === 0 ? <Notice>No devices yet.</Notice> : <ul class="list">{active.map(row)}</ul>)}
      {unattached.length > 0 && (
        <>
          <h2>Origin links without a device</h2>
          <ul class="list">
            {unattached.map((l) => (
              <li class="card device" data-testid="origin-link" key={`${l.email}:${l.connectedAt}`}>
                <div class="row">
                  <strong>Origin link</strong>
                  <Badge tone="ok">Linked</Badge>
                </div>
                <p class="sub">{l.email} · a token given to outpost origin (OUTPOST_TOKEN)</p>
                <p class="meta">
                  <span>
                    Linked <When at={l.connectedAt} now={now} />
                  </span>
                  <span>
                    Last ping <When at={l.lastSeen} now={now} />
                  </span>
                </p>
              </li>
            ))}
          </ul>
        </>
      )}
      {revoked.length > 0 && (
        <details class="revoked-list">
          <summary>Revoked ({revoked.length})</summary>
          <ul class="list">{revoked.map(row)}</ul>
        </details>
      )}
      {owner && (
        <>
          <h2>Add a phone or browser</h2>
          <InviteForm />
        </>
      )}
    </Frame>
  );
}
