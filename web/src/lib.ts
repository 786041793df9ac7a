// Small shared pieces: an observable store and its hook, a ticking clock, the server clock offset, time formatting, the router.
import { useEffect, useReducer, useState } from "preact/hooks";

export class Store<T> {
  #value: T;
  readonly #subs = new Set<() => void>();

  constructor(value: T) {
    this.#value = value;
  }

  get(): T {
    return this.#value;
  }

  set(value: T): void {
    if (Object.is(value, this.#value)) return;
    this.#value = value;
    for (const fn of [...this.#subs]) fn();
  }

  update(fn: (value: T) => T): void {
    this.set(fn(this.#value));
  }

  subscribe(fn: () => void): () => void {
    this.#subs.add(fn);
    return () => this.#subs.delete(fn);
  }
}

/** Re-renders the component whenever the store changes. */
export function useStore<T>(store: Store<T>): T {
  const [, force] = useReducer((n: number) => n + 1, 0);
  const value = store.get();
  useEffect(() => {
    const off = store.subscribe(() => force(0));
    if (store.get() !== value) force(0);
    return off;
  }, [store]);
  return value;
}

/** The current server time, re-rendered every `everyMs`. */
export function useNow(everyMs = 1000): number {
  const [now, setNow] = useState(serverNow);
  useEffect(() => {
    const timer = setInterval(() => setNow(serverNow()), everyMs);
    return () => clearInterval(timer);
  }, [everyMs]);
  return now;
}

// --- the server's clock: times from the edge are compared against it, so a phone with a wrong clock still counts right.

let offsetMs = 0;

/** Learns the offset from a response's Date header (1 s resolution, so small differences are ignored). */
export function noteServerDate(header: string | null): void {
  const at = header ? Date.parse(header) : NaN;
  if (!Number.isFinite(at)) return;
  const diff = at + 500 - Date.now();
  offsetMs = Math.abs(diff) > 2000 ? diff : 0;
}

function serverNow(): number {
  return Date.now() + offsetMs;
}

// --- formatting

function span(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60 ? `${m % 60} min` : ""}`.trim();
  return `${Math.floor(h / 24)} days`;
}

/** "3 min ago", or "in 12 s" for a time in the future. */
export function ago(iso: string | number | null | undefined, now: number): string {
  if (iso === null || iso === undefined) return "never";
  const at = typeof iso === "number" ? iso : Date.parse(iso);
  if (!Number.isFinite(at)) return "unknown";
  const diff = now - at;
  if (Math.abs(diff) < 1500) return "just now";
  return diff >= 0 ? `${span(diff)} ago` : `in ${span(-diff)}`;
}

export function duration(ms: number): string {
  return span(ms);
}

const PLATFORMS: Record<string, string> = {
  darwin: "macOS",
  macos: "macOS",
  linux: "Linux",
  win32: "Windows",
  windows: "Windows",
  ios: "iOS",
  android: "Android",
  freebsd: "FreeBSD",
};

/** "Linux x64" from Node's or the edge's platform and arch names. */
export function platformName(platform: string, arch = ""): string {
  return [PLATFORMS[platform] ?? platform, arch].filter(Boolean).join(" ");
}

/** A local date and time, for titles and timelines. */
export function stamp(iso: string | number | null | undefined): string {
  if (iso === null || iso === undefined) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

// --- the router: real paths, so every page is a deep link (the Worker's SPA fallback serves index.html for them).

export type Route =
  | { page: "home" }
  | { page: "session"; id: string }
  | { page: "device" }
  | { page: "devices" }
  | { page: "access" }
  | { page: "open" }
  | { page: "enroll" }
  | { page: "not-found" };

export function parseRoute(path: string): Route {
  if (path === "/" || path === "") return { page: "home" };
  const session = /^\/sessions\/([^/]+)\/?$/.exec(path);
  if (session) return { page: "session", id: decodeURIComponent(session[1]!) };
  const simple: Record<string, Route> = {
    "/device": { page: "device" },
    "/devices": { page: "devices" },
    "/access": { page: "access" },
    "/open": { page: "open" },
    "/enroll": { page: "enroll" },
  };
  return simple[path.replace(/\/$/, "")] ?? { page: "not-found" };
}

export const location$ = new Store({ path: location.pathname, hash: location.hash });

export function navigate(to: string, options: { replace?: boolean } = {}): void {
  const url = new URL(to, location.href);
  if (options.replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  location$.set({ path: url.pathname, hash: url.hash });
  if (!options.replace) window.scrollTo(0, 0);
}

/** Same-origin links to app pages are handled here; anything else (Worker pages, new tabs) is left to the browser. */
export function interceptLinks(): void {
  addEventListener("popstate", () => location$.set({ path: location.pathname, hash: location.hash }));
  document.addEventListener("click", (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const a = (e.target as Element | null)?.closest?.("a");
    if (!a || a.target || a.hasAttribute("download") || a.origin !== location.origin) return;
    if (parseRoute(a.pathname).page === "not-found") return;
    e.preventDefault();
    navigate(a.pathname + a.search + a.hash);
  });
}

/** A parameter from the URL fragment (`#code=…`), where credentials and codes travel so no server logs them. */
export function hashParam(hash: string, name: string): string | null {
  return new URLSearchParams(hash.replace(/^#/, "")).get(name);
}
