// /device: approve or deny a CLI login. The code comes from the QR code's fragment (#code=BCDF-GHJK) or is typed in.
import { useEffect, useState } from "preact/hooks";
import { api, ApiError, errorMessage } from "../api.ts";
import { hashParam, location$, platformName, stamp, useNow, useStore } from "../lib.ts";
import { Details, Frame, Notice, Spinner, When } from "../ui.tsx";
import type { LoginLookup, LoginRequest } from "../../../shared/identity.ts";
import { PATHS } from "../../../shared/paths.ts";

type Step =
  | { step: "enter"; error?: string; code?: string }
  | { step: "looking"; code: string }
  | { step: "review"; request: LoginRequest; error?: string }
  | { step: "deciding"; request: LoginRequest; decision: "approve" | "deny" }
  | { step: "done"; request: LoginRequest; approved: boolean };

/** Codes use 20 consonants in two groups of four; anything else typed is dropped, and the dash is added back. */
function normalizeCode(raw: string): string {
  const letters = raw
    .toUpperCase()
    .replace(/[^A-Z]/g, "")
    .slice(0, 8);
  return letters.length > 4 ? `${letters.slice(0, 4)}-${letters.slice(4)}` : letters;
}

function CodeForm(props: { initial: string; error?: string; onEdit: () => void; onSubmit: (code: string) => void }) {
  const [value, setValue] = useState(props.initial);
  return (
    <form
      class="card stack"
      onSubmit={(e) => {
        e.preventDefault();
        props.onSubmit(normalizeCode(value));
      }}
    >
      <p>
        Enter the code shown in your terminal by <code>outpost login</code>.
      </p>
      <label for="user-code">Login code</label>
      <input
        id="user-code"
        class="code"
        name="code"
        value={value}
        onInput={(e) => {
          setValue(normalizeCode((e.target as HTMLInputElement).value));
          props.onEdit();
        }}
        placeholder="BCDF-GHJK"
        autocomplete="one-time-code"
        autocapitalize="characters"
        spellcheck={false}
        required
        pattern="[A-Za-z]{4}-?[A-Za-z]{4}"
        aria-invalid={props.error ? "true" : undefined}
        aria-describedby={props.error ? "code-error" : undefined}
      />
      {props.error && (
        <p id="code-error" class="field-error">
          {props.error}
        </p>
      )}
      <button type="submit" class="primary">
        Continue
      </button>
    </form>
  );
}

export function DevicePage() {
  const { hash } = useStore(location$);
  const now = useNow(5000);
  const fromLink = normalizeCode(hashParam(hash, "code") ?? "");
  const [state, setState] = useState<Step>(fromLink.length === 9 ? { step: "looking", code: fromLink } : { step: "enter" });

  useEffect(() => {
    if (state.step !== "looking") return;
    let cancelled = false;
    api<LoginLookup>(PATHS.deviceLookup, { method: "POST", body: { user_code: state.code } }).then(
      ({ request }) => !cancelled && setState({ step: "review", request }),
      (err) => !cancelled && setState({ step: "enter", error: lookupError(err), code: state.code }),
    );
    return () => {
      cancelled = true;
    };
  }, [state]);

  const decide = async (request: LoginRequest, decision: "approve" | "deny") => {
    setState({ step: "deciding", request, decision });
    try {
      await api(PATHS.deviceApprove, { method: "POST", body: { user_code: request.userCode, decision } });
      setState({ step: "done", request, approved: decision === "approve" });
    } catch (err) {
      setState({ step: "review", request, error: errorMessage(err) });
    }
  };

  if (state.step === "enter") {
    return (
      <Frame title="Approve a login">
        <CodeForm
          initial={state.code ?? fromLink}
          error={state.error}
          onEdit={() => state.error && setState({ step: "enter", code: state.code })}
          onSubmit={(code) => setState({ step: "looking", code })}
        />
      </Frame>
    );
  }
  if (state.step === "looking")
    return (
      <Frame title="Approve a login">
        <Spinner label={`Looking up ${state.code}…`} />
      </Frame>
    );

  const r = state.request;
  const where = [r.location, r.ip && r.ip !== "local" ? r.ip : ""].filter(Boolean).join(" · ") || "unknown";
  const details = (
    <Details
      rows={[
        ["Code", <code class="code-big">{r.userCode}</code>],
        ["Computer", r.hostname || "unknown"],
        ["Platform", platformName(r.platform, r.arch) || "unknown"],
        ["App", r.clientName],
        [
          "Requested",
          <span>
            <When at={r.createdAt} now={now} /> ({stamp(r.createdAt)})
          </span>,
        ],
        ["From", where],
      ]}
    />
  );
  if (state.step === "done") {
    return (
      <Frame title={state.approved ? "Login approved" : "Login denied"}>
        <Notice tone={state.approved ? "success" : "info"}>
          <span data-testid="device-result" data-result={state.approved ? "approved" : "denied"}>
            {state.approved
              ? `${r.hostname || "The computer"} is now signed in. You can go back to your terminal.`
              : `The login from ${r.hostname || "that computer"} was denied. Nothing was signed in.`}
          </span>
        </Notice>
        <div class="card">{details}</div>
        <p>
          <a href="/devices">See all devices</a>
        </p>
      </Frame>
    );
  }
  const busy = state.step === "deciding";
  const expired = r.expiresAt <= now;
  return (
    <Frame title="Approve a login?">
      <p>
        A computer is asking to sign in to Outpost as you. Approve it only if you just ran <code>outpost login</code> there and the code matches.
      </p>
      <div class="card" data-testid="device-request">
        {details}
      </div>
      {state.step === "review" && state.error && <Notice tone="error">{state.error}</Notice>}
      {expired && (
        <Notice tone="error">
          This code has expired. Run <code>outpost login</code> again.
        </Notice>
      )}
      <div class="actions">
        <button type="button" class="primary" disabled={busy || expired} onClick={() => void decide(r, "approve")}>
          {busy && state.decision === "approve" ? "Approving…" : "Approve"}
        </button>
        <button type="button" class="danger" disabled={busy || expired} onClick={() => void decide(r, "deny")}>
          {busy && state.decision === "deny" ? "Denying…" : "Deny"}
        </button>
      </div>
    </Frame>
  );
}

function lookupError(err: unknown): string {
  if (err instanceof ApiError && err.status === 404) return "No pending login has this code. Check it, or run outpost login again.";
  return errorMessage(err);
}
