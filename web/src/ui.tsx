// Shared pieces of the interface: the page frame and navigation, status badges, times, notices and buttons.
import type { ComponentChildren } from "preact";
import { useEffect, useRef } from "preact/hooks";
import { auth, signOut } from "./auth.ts";
import { ago, location$, stamp, useStore } from "./lib.ts";
import { isExpired } from "./presence.ts";
import type { SessionView } from "../../shared/api-types.ts";

const NAV = [
  { href: "/", label: "Sessions" },
  { href: "/devices", label: "Devices" },
  { href: "/access", label: "Access", ownerOnly: true },
  { href: "/open", label: "Laptop app" },
];

/** The frame of every signed-in page: header with the account, navigation, and the page's own content. */
export function Frame(props: { title: string; children: ComponentChildren; wide?: boolean }) {
  const state = useStore(auth);
  const { path } = useStore(location$);
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = props.title === "Outpost" ? "Outpost" : `${props.title} · Outpost`;
    // Moving focus to the new page's heading tells screen readers the page changed.
    if (document.activeElement && document.activeElement !== document.body) heading.current?.focus({ preventScroll: true });
  }, [props.title]);
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href="/" aria-label="Outpost home">
          <img src="/icons/icon.svg" alt="" width="28" height="28" />
          <span>Outpost</span>
        </a>
        {state.status === "signed-in" && (
          <div class="account">
            <span class="who" title={state.user.email}>
              {state.user.email} <span class="role">{state.user.role}</span>
            </span>
            <button type="button" class="ghost small" onClick={() => void signOut()}>
              Sign out
            </button>
          </div>
        )}
      </header>
      {state.status === "signed-in" && (
        <nav class="tabs" aria-label="Main">
          {NAV.filter((item) => !item.ownerOnly || state.user.role === "owner").map((item) => {
            const current = item.href === "/" ? path === "/" || path.startsWith("/sessions/") : path.startsWith(item.href);
            return (
              <a href={item.href} aria-current={current ? "page" : undefined}>
                {item.label}
              </a>
            );
          })}
        </nav>
      )}
      <main id="main" class={props.wide ? "wide" : ""}>
        <h1 ref={heading} tabIndex={-1}>
          {props.title}
        </h1>
        {props.children}
      </main>
    </>
  );
}

export type Tone = "ok" | "idle" | "bad" | "muted" | "warn";

/** What a session's badge says, from its status and (for live ones) whether its expiry has already passed. */
export function sessionTone(s: SessionView, now: number): { label: string; tone: Tone; key: string } {
  if (isExpired(s)) return { label: "Expired", tone: "bad", key: "expired" };
  if (s.status === "failed")
    return { label: s.exitCode !== null && s.exitCode !== undefined ? `Failed (exit ${s.exitCode})` : "Failed", tone: "bad", key: "failed" };
  if (s.status === "ended") return { label: "Ended", tone: "muted", key: "ended" };
  if (s.expiresAt && Date.parse(s.expiresAt) <= now) return { label: "No heartbeat", tone: "warn", key: "overdue" };
  return s.status === "idle" ? { label: "Idle", tone: "idle", key: "idle" } : { label: "Working", tone: "ok", key: "working" };
}

export function Badge(props: { tone: Tone; children: ComponentChildren }) {
  return <span class={`badge ${props.tone}`}>{props.children}</span>;
}

/** A relative time ("3 min ago") with the exact time on hover and for assistive technology. */
export function When(props: { at: string | number | null | undefined; now: number; missing?: string }) {
  if (props.at === null || props.at === undefined) return <span>{props.missing ?? "never"}</span>;
  const iso = new Date(props.at).toISOString();
  return (
    <time dateTime={iso} title={stamp(props.at)}>
      {ago(props.at, props.now)}
    </time>
  );
}

export function Notice(props: { tone?: "error" | "info" | "success"; children: ComponentChildren; live?: boolean }) {
  const tone = props.tone ?? "info";
  return (
    <div class={`notice ${tone}`} role={tone === "error" ? "alert" : "status"} aria-live={props.live === false ? undefined : "polite"}>
      {props.children}
    </div>
  );
}

export function Spinner(props: { label: string }) {
  return (
    <p class="loading" role="status">
      <span class="spin" aria-hidden="true" /> {props.label}
    </p>
  );
}

/** Key-value details, as a description list that stacks on a phone. */
export function Details(props: { rows: [string, ComponentChildren][] }) {
  return (
    <dl class="details">
      {props.rows.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}
