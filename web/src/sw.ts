// Service worker: versioned caches; documents network-first with an offline page, hashed assets stale-while-revalidate, API never cached.

// The DOM library has no service-worker types; these are the few this file uses.
interface ExtendableEvent extends Event {
  waitUntil(promise: Promise<unknown>): void;
}
interface FetchEvent extends ExtendableEvent {
  readonly request: Request;
  respondWith(response: Promise<Response> | Response): void;
}
interface WorkerScope {
  skipWaiting(): Promise<void>;
  clients: { claim(): Promise<void> };
  location: Location;
  addEventListener(type: "install" | "activate", fn: (e: ExtendableEvent) => void): void;
  addEventListener(type: "fetch", fn: (e: FetchEvent) => void): void;
}
const sw = self as unknown as WorkerScope;
// A module, so these names stay out of the global scope the DOM typings describe.
export {};

/** Replaced by the build with an id of this build's files: every deploy gets new caches and drops the old ones. */
const VERSION = "__OUTPOST_BUILD_ID__";
const PREFIX = "outpost-";
const SHELL = `${PREFIX}shell-${VERSION}`;
const ASSETS = `${PREFIX}assets-${VERSION}`;
const OFFLINE = "/offline.html";
const PRECACHE = [OFFLINE, "/manifest.webmanifest", "/icons/icon.svg", "/icons/icon-192.png"];
/** Answered by the Worker (or the origin behind it): always the network, never a cache. */
const NETWORK_ONLY = /^\/(api|auth|socket\.io|\.well-known)(\/|$)|^\/(health|ready|sw\.js)$/;
/** A document that takes longer than this is replaced by the offline page (a dead network can hang for minutes). */
const NAVIGATION_TIMEOUT_MS = 10_000;

sw.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(SHELL)
      .then((cache) => cache.addAll(PRECACHE.map((url) => new Request(url, { cache: "reload" }))))
      .then(() => sw.skipWaiting()),
  );
});

sw.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith(PREFIX) && k !== SHELL && k !== ASSETS).map((k) => caches.delete(k))))
      .then(() => sw.clients.claim()),
  );
});

sw.addEventListener("fetch", (event) => {
  const req = event.request;
  if (req.method !== "GET" || req.headers.get("upgrade")) return;
  const url = new URL(req.url);
  if (url.origin !== sw.location.origin || NETWORK_ONLY.test(url.pathname)) return;
  if (req.mode === "navigate") event.respondWith(networkOrOffline(req));
  else if (url.pathname.startsWith("/assets/")) event.respondWith(staleWhileRevalidate(event, req));
  else if (PRECACHE.includes(url.pathname) || url.pathname.startsWith("/icons/")) event.respondWith(cacheFirst(req));
});

/** Network first; when the edge cannot be reached, the offline page (which retries by itself) in place of the document. */
async function networkOrOffline(req: Request): Promise<Response> {
  try {
    return await withTimeout(fetch(req), NAVIGATION_TIMEOUT_MS);
  } catch {
    const offline = await caches.match(OFFLINE, { cacheName: SHELL });
    // A fresh response: the cached one may carry a redirect flag (/offline.html → /offline), which navigations refuse.
    if (offline)
      return new Response(await offline.blob(), { status: 200, headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" } });
    return new Response("Outpost is offline.", { status: 503, headers: { "content-type": "text/plain; charset=utf-8" } });
  }
}

/** Hashed files never change: answer from the cache at once and refresh it in the background. */
async function staleWhileRevalidate(event: FetchEvent, req: Request): Promise<Response> {
  const cache = await caches.open(ASSETS);
  const hit = await cache.match(req);
  const network = fetch(req).then(async (res) => {
    // Only real files: a missing chunk is a no-store 404 and must not be kept.
    if (res.ok && !(res.headers.get("content-type") ?? "").startsWith("text/html")) await cache.put(req, res.clone());
    return res;
  });
  if (hit) {
    event.waitUntil(network.catch(() => undefined));
    return hit;
  }
  return network;
}

async function cacheFirst(req: Request): Promise<Response> {
  const hit = await caches.match(req, { cacheName: SHELL });
  if (hit) return hit;
  const res = await fetch(req);
  if (res.ok) await (await caches.open(SHELL)).put(req, res.clone());
  return res;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("timeout")), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
