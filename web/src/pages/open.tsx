// Opens the laptop's own app (a path the edge proxies, e.g. an editor) in a frame, through a short-lived scoped cookie.
import { useState } from "preact/hooks";
import { api, errorMessage } from "../api.ts";
import { duration, hashParam, location$, navigate, useNow, useStore } from "../lib.ts";
import { Frame, Notice } from "../ui.tsx";
import type { ScopedAccess } from "../../../shared/identity.ts";
import { PATHS } from "../../../shared/paths.ts";

const TTLS = [
  { seconds: 300, label: "5 minutes" },
  { seconds: 900, label: "15 minutes" },
];

interface Opened {
  url: string;
  prefix: string;
  until: number;
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
  const [prefix, setPrefix] = useState(hashParam(hash, "path") ?? "/api/");
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
      // The link is same-origin (/auth/scoped/open): it trades a one-time code for a cookie limited to the prefix.
      const url = new URL(res.url);
      setOpened({ url: `${url.pathname}${url.hash}`, prefix: res.prefix, until: Date.now() + res.expires_in * 1000 });
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
          <iframe class="app-frame" title={`Laptop app at ${opened.prefix}`} src={opened.url} data-testid="scoped-frame" />
        </>
      )}
    </Frame>
  );
}
