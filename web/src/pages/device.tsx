// /device: approve or deny a CLI login. The code is typed in, or comes from a link's fragment (#code=BCDF-GHJK) and is then confirmed by typing its end.
import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, ApiError, errorMessage } from "../api.ts";
import { hashParam, location$, navigate, platformName, useNow, useStore } from "../lib.ts";
import { Details, Frame, Notice, Spinner, When } from "../ui.tsx";
import type { LoginLookup, LoginRequest } from "../../../shared/identity.ts";
import { PATHS } from "../../../shared/paths.ts";

/** "link": the code came in the page's fragment (the CLI's QR code, or any link); "typed": the user typed it here. */
type Source = "typed" | "link";

type Step =
  | { step: "enter"; error?: string; code?: string }
  | { step: "looking"; code: string; source: Source }
  | { step: "review"; found: Found; error?: string }
  | { step: "deciding"; found: Found; decision: "approve" | "deny" }
  | { step: "done"; found: Found; approved: boolean };

/** A looked-up login, with how its code arrived and what the user typed to confirm it (links only). */
type Found = LoginLookup & { source: Source; typed: string };

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
  const [state, setState] = useState<Step>(fromLink.length === 9 ? { step: "looking", code: fromLink, source: "link" } : { step: "enter" });
  const [typed, setTyped] = useState("");

  // A link opened while this page is showing (another QR code) starts over with its code.
  useEffect(() => {
    if (!hashParam(hash, "code")) return;
    if (fromLink.length === 9) {
      setState((prev) =>
        prev.step === "looking" && prev.code === fromLink && prev.source === "link" ? prev : { step: "looking", code: fromLink, source: "link" },
      );
      setTyped("");
    }
    // The code leaves the address bar at once: the page asks for its second half, which it must not show anywhere.
    navigate(location.pathname + location.search, { replace: true });
  }, [hash]);

  useEffect(() => {
    if (state.step !== "looking") return;
    let cancelled = false;
    const { code, source } = state;
    api<LoginLookup>(PATHS.deviceLookup, { method: "POST", body: { user_code: code, source } }).then(
      (lookup) => !cancelled && setState({ step: "review", found: { ...lookup, source, typed: code } }),
      (err) => !cancelled && setState({ step: "enter", error: lookupError(err), code: source === "typed" ? code : "" }),
    );
    return () => {
      cancelled = true;
    };
  }, [state]);

  const decide = async (found: Found, decision: "approve" | "deny") => {
    setState({ step: "deciding", found, decision });
    // A typed code is its own confirmation; a link's code is confirmed by the letters typed from the computer's screen.
    const confirm = found.source === "link" ? typed : found.typed;
    try {
      await api(PATHS.deviceApprove, { method: "POST", body: { user_code: found.request.userCode, decision, confirm } });
      setState({ step: "done", found, approved: decision === "approve" });
    } catch (err) {
      setState({ step: "review", found, error: errorMessage(err) });
    }
  };

  if (state.step === "enter") {
    return (
      <Frame title="Approve a login">
        <CodeForm
          initial={state.code ?? ""}
          error={state.error}
          onEdit={() => state.error && setState({ step: "enter", code: state.code ?? "" })}
          onSubmit={(code) => setState({ step: "looking", code, source: "typed" })}
        />
      </Frame>
    );
  }
  if (state.step === "looking")
    return (
      <Frame title="Approve a login">
        <Spinner label={state.source === "link" ? "Looking up the login from the link…" : `Looking up ${state.code}…`} />
      </Frame>
    );

  const { found } = state;
  const r = found.request;
  const confirming = found.source === "link";
  // Until a link's code is confirmed its second half is shown nowhere (the confirmation card shows the first half).
  const details = <RequestDetails request={r} code={confirming && state.step !== "done" ? null : r.userCode} now={now} />;
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
        <div class="device-review">{details}</div>
        <p>
          <a href="/devices">See all devices</a>
        </p>
      </Frame>
    );
  }
  const busy = state.step === "deciding";
  const expired = r.expiresAt <= now;
  const confirmed = !confirming || confirms(r.userCode, typed);
  return (
    <Frame title="Approve a login?">
      <p>
        A computer is asking to sign in to Outpost as you. Approve it only if you just ran <code>outpost login</code> there yourself.
      </p>
      {found.countryMismatch && <CountryWarning from={r.country} phone={found.approverCountry} />}
      <div class="device-review">
        {details}
        {confirming && <ConfirmCode userCode={r.userCode} value={typed} onInput={setTyped} disabled={busy || expired} />}
      </div>
      {state.step === "review" && state.error && <Notice tone="error">{state.error}</Notice>}
      {expired && (
        <Notice tone="error">
          This code has expired. Run <code>outpost login</code> again.
        </Notice>
      )}
      <div class="actions">
        <button type="button" class="primary" disabled={busy || expired || !confirmed} onClick={() => void decide(found, "approve")}>
          {busy && state.decision === "approve" ? "Approving…" : "Approve"}
        </button>
        <button type="button" class="danger" disabled={busy || expired} onClick={() => void decide(found, "deny")}>
          {busy && state.decision === "deny" ? "Denying…" : "Deny"}
        </button>
      </div>
    </Frame>
  );
}

/** What the edge saw (where the request came from), apart from what the computer says about itself (which anyone can make up). */
function RequestDetails(props: { request: LoginRequest; code: string | null; now: number }) {
  const r = props.request;
  const place = [r.city, countryName(r.country)].filter(Boolean).join(", ") || r.location || "unknown";
  const network = [r.asOrganization, r.asn !== null ? `AS${r.asn}` : ""].filter(Boolean).join(" · ") || "unknown";
  const seen: [string, ComponentChildren][] = [
    ["From", <span data-testid="device-from">{place}</span>],
    ["Requested", <When at={r.createdAt} now={props.now} />],
    ["Network", network],
    ["IP address", r.ip && r.ip !== "local" ? r.ip : "unknown"],
  ];
  if (props.code) seen.unshift(["Code", <code class="code-big">{props.code}</code>]);
  return (
    <>
      <section class="card compact" data-testid="device-request" aria-labelledby="seen-heading">
        <h2 id="seen-heading" class="card-title">
          Seen by Outpost
        </h2>
        <Details rows={seen} />
      </section>
      <section class="card compact claimed" data-testid="device-claims" aria-labelledby="claimed-heading">
        <h2 id="claimed-heading" class="card-title">
          Claimed by the computer
        </h2>
        <p class="hint">What the computer says about itself. Anyone can make this up.</p>
        <Details
          rows={[
            ["Computer name", r.hostname || "unknown"],
            ["App", r.clientName],
            ["Platform", platformName(r.platform, r.arch) || "unknown"],
          ]}
        />
      </section>
    </>
  );
}

function CountryWarning(props: { from: string; phone: string }) {
  return (
    <Notice tone="error">
      <div data-testid="country-warning">
        <strong class="warning-title">This request comes from another country</strong>
        <p>
          The computer asking to sign in is on a network in <strong>{countryName(props.from) || props.from}</strong>, but this phone is in{" "}
          <strong>{countryName(props.phone) || props.phone}</strong>. Unless you are at that computer yourself, someone else may be trying to get into your
          account: deny it.
        </p>
      </div>
    </Notice>
  );
}

/** RFC 8628 §5.4: a link can come from anyone, so its code is confirmed with letters read off the computer's own screen. */
function ConfirmCode(props: { userCode: string; value: string; disabled: boolean; onInput: (value: string) => void }) {
  const letters = props.value;
  const complete = letters.length === 4 || letters.length === 8;
  const wrong = complete && !confirms(props.userCode, letters);
  return (
    <div class="card stack confirm-code">
      <label for="confirm-code">Type the last four letters of the code on your computer</label>
      <p class="hint" id="confirm-hint">
        It is in the terminal where you ran <code>outpost login</code>. Anyone can send a link; only your computer shows the whole code.
      </p>
      <div class="code-entry">
        <span class="code-prefix" aria-hidden="true">
          {props.userCode.slice(0, 5)}
        </span>
        <input
          id="confirm-code"
          class="code"
          value={letters}
          onInput={(e) => props.onInput(confirmLetters((e.target as HTMLInputElement).value))}
          placeholder="····"
          autocomplete="off"
          autocapitalize="characters"
          spellcheck={false}
          disabled={props.disabled}
          aria-invalid={wrong ? "true" : undefined}
          aria-describedby={wrong ? "confirm-hint confirm-error" : "confirm-hint"}
        />
      </div>
      {wrong && (
        <p id="confirm-error" class="field-error" role="alert">
          That does not match this login. If your computer shows a different code, this link did not come from it: deny it.
        </p>
      )}
    </div>
  );
}

/** Letters only, upper case, at most the whole code. */
function confirmLetters(raw: string): string {
  return raw
    .toUpperCase()
    .replace(/[^A-Z]/g, "")
    .slice(0, 8);
}

/** The edge's rule (device-login.ts): the code's last four letters, or all eight. */
function confirms(userCode: string, letters: string): boolean {
  const code = userCode.replace("-", "");
  return letters.length === 4 ? letters === code.slice(4) : letters === code;
}

const REGIONS = new Intl.DisplayNames(undefined, { type: "region", fallback: "none" });

/** "Germany" for "DE"; Cloudflare's own codes in words; "" when unknown. */
function countryName(code: string): string {
  if (!code || code === "XX") return "";
  if (code === "T1") return "the Tor network";
  try {
    return REGIONS.of(code) ?? code;
  } catch {
    return code;
  }
}

function lookupError(err: unknown): string {
  if (err instanceof ApiError && err.status === 404) return "No pending login has this code. Check it, or run outpost login again.";
  return errorMessage(err);
}
