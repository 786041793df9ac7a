// Opens the laptop's own app (a path the edge proxies, e.g. an editor) in a frame, through a short-lived scoped cookie.
import { useState } from "preact/hooks";
import { api, errorMessage } from "../api.ts";
import { duration, hashParam, location$, navigate, useNow, useStore } from "../lib.ts";
import { Frame, Notice } from "../ui.tsx";
import { SCOPED_SANDBOX, type ScopedAccess } from "../../../shared/identity.ts";
import { PATHS } from "../../../shared/paths.ts";

const TTLS = [
  { seconds: 300, label: "5 minutes" },
  { seconds: 900, label: "15 minutes" },
];

interface Opened {
  prefix: string;
  until: number;
}

/**
 * Trades the one-time code for the scoped cookie from this page (same origin, first party), so the sandboxed frame
 * then only has to load the prefix: from inside the sandbox the page has an opaque origin and could not redeem it.
 */
async function redeem(link: string): Promise<void> {
  const code = hashParam(new URL(link).hash, "code");
  let res: Response;
  try {
    res = await fetch(`${PATHS.scoped}/redeem`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ code }),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new Error("The edge cannot be reached. Check your connection and try again.");
  }
  if (!res.ok) {
    const body = (await res.json().catch(() => null)) as { error?: { message?: string } } | null;
    throw new Error(body?.error?.message ?? `The edge answered ${res.status}.`);
  }
}

/** A prefix the edge accepts: a path of plain segments, ending in "/" so sibling paths stay closed. */
function cleanPrefix(raw: string): string {
  let p = raw.trim();
  if (!p.startsWith("/")) p = `/${p}`;
  return p.endsWith("/") ? p : `${p}/`;
}

export function OpenPage() {
  const { hash } = useStore(location$);
  const now = useNow(1000);
  // No default path: opening all of /api/ would hand the whole laptop API to whatever page is framed.
  const [prefix, setPrefix] = useState(hashParam(hash, "path") ?? "");
  const [ttl, setTtl] = useState(900);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [opened, setOpened] = useState<Opened | null>(null);

  const open = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const wanted = cleanPrefix(prefix);
    try {
      const res = await api<ScopedAccess>(PATHS.scoped, {
        method: "POST",
        body: { prefix: wanted, ttl_seconds: ttl },
      });
      // The link's one-time code becomes a cookie limited to the prefix; the frame then opens the prefix itself.
      await redeem(res.url);
      setOpened({ prefix: res.prefix, until: Date.now() + res.expires_in * 1000 });
      navigate(`/open#path=${encodeURIComponent(wanted)}`, { replace: true });
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };

  const left = opened ? opened.until - now : 0;
  return (
    <Frame title="Laptop app" wide={opened !== null}>
      {!opened && (
        <form class="card stack" onSubmit={(e) => void open(e)}>
          <p>Open a page of the app on your laptop. Access is limited to this path and ends after the time you pick.</p>
          <label for="scoped-path">Path</label>
          <input
            id="scoped-path"
            value={prefix}
            onInput={(e) => setPrefix((e.target as HTMLInputElement).value)}
            placeholder="/api/editor/"
            spellcheck={false}
            autocapitalize="off"
            required
          />
          <label for="scoped-ttl">For</label>
          <select id="scoped-ttl" value={String(ttl)} onChange={(e) => setTtl(Number((e.target as HTMLSelectElement).value))}>
            {TTLS.map((t) => (
              <option value={String(t.seconds)}>{t.label}</option>
            ))}
          </select>
          {error && <Notice tone="error">{error}</Notice>}
          <button type="submit" class="primary" disabled={busy}>
            {busy ? "Opening…" : "Open"}
          </button>
        </form>
      )}
      {opened && (
        <>
          <div class="row frame-bar">
            <span class="sub" data-testid="scoped-status">
              <code>{opened.prefix}</code> · {left > 0 ? `access ends in ${duration(left)}` : "access has ended"}
            </span>
            <span class="actions">
              <a class="button ghost small" href={opened.prefix} target="_blank" rel="noopener">
                New tab
              </a>
              <button type="button" class="ghost small" onClick={() => setOpened(null)}>
                Close
              </button>
            </span>
          </div>
          {/* Sandboxed: the laptop's page shares this origin, and must not reach the web app, its storage or /auth/*. */}
          <iframe class="app-frame" title={`Laptop app at ${opened.prefix}`} src={opened.prefix} sandbox={SCOPED_SANDBOX} data-testid="scoped-frame" />
        </>
      )}
    </Frame>
  );
}
