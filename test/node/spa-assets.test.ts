// The SPA from Workers static assets over real HTTP: index.html never cached, hashed assets immutable, Worker routes JSON.
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack, type Stack } from "../support/stack.ts";

const DIST = fileURLToPath(new URL("../../web/dist/", import.meta.url));
const IMMUTABLE = "public, max-age=31536000, immutable";

/** What a browser sends when the user opens a URL. */
const NAVIGATE = {
  "Sec-Fetch-Mode": "navigate",
  "Sec-Fetch-Dest": "document",
  Accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
};
/** What a browser sends for <script src>. */
const SCRIPT = { "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "script", Accept: "*/*" };

let stack: Stack;
let indexHtml: string;
let hashedJs: string;

beforeAll(async () => {
  // `npm test` builds web/dist first; run `npm run build:web` when calling vitest directly.
  indexHtml = readFileSync(`${DIST}index.html`, "utf8");
  const js = readdirSync(`${DIST}assets`).find((name) => /^[\w-]+-[\w-]{8}\.js$/.test(name));
  if (!js) throw new Error("web/dist/assets has no hashed .js file: run `npm run build:web`");
  hashedJs = js;
  stack = await startStack();
});

afterAll(async () => {
  await stack?.stop();
});

describe("documents", () => {
  it.each(["/", "/sessions/abc", "/sessions/abc/files?tab=2"])("%s serves index.html with Cache-Control: no-store", async (path) => {
    const res = await fetch(`${stack.edgeUrl}${path}`, { headers: NAVIGATE });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("referrer-policy")).toBe("same-origin");
    expect(await res.text()).toBe(indexHtml);
  });
});

describe("hashed build output", () => {
  it("a real file under /assets/ is served as JavaScript with immutable caching", async () => {
    const res = await fetch(`${stack.edgeUrl}/assets/${hashedJs}`, { headers: SCRIPT });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/javascript/);
    expect(res.headers.get("cache-control")).toBe(IMMUTABLE);
    expect(await res.text()).toBe(readFileSync(`${DIST}assets/${hashedJs}`, "utf8"));
  });

  // BUG (wrangler.toml + web/public/_headers, not the Worker): run_worker_first is a list, so every other path is
  // "static routing" and not_found_handling = "single-page-application" answers any missing file with index.html,
  // whatever Sec-Fetch-Mode says. The "/assets/*" rule in _headers matches the request path, so a missing chunk
  // (e.g. an old hash after a deploy) comes back as 200 text/html with "public, max-age=31536000, immutable":
  // the browser gets a MIME-type error and caches the wrong answer for a year. Remove `.fails` once it is a 404
  // (or at least not cached as immutable).
  it.fails("a missing file under /assets/ requested as a script is a 404, not immutable index.html", async () => {
    const res = await fetch(`${stack.edgeUrl}/assets/nope-123.js`, { headers: SCRIPT });
    const cacheControl = res.headers.get("cache-control") ?? "";
    await res.body?.cancel();
    expect({ status: res.status, immutable: cacheControl.includes("immutable") }).toEqual({ status: 404, immutable: false });
  });
});

describe("Worker routes are not swallowed by the SPA", () => {
  it.each(["/health", "/ready"])("%s is answered by the Worker as JSON, even as a browser navigation", async (path) => {
    for (const headers of [{}, NAVIGATE]) {
      const res = await fetch(`${stack.edgeUrl}${path}`, { headers });
      expect(res.headers.get("content-type")).toMatch(/^application\/json/);
      expect(res.headers.get("cache-control")).toBe("no-store");
      expect(res.headers.get("x-request-id")).toBeTruthy();
      const body = (await res.json()) as Record<string, unknown>;
      expect(body).toHaveProperty(path === "/health" ? "status" : "ready");
    }
  });

  it("an /api path opened as a navigation is proxied to the origin, not given index.html", async () => {
    const res = await fetch(`${stack.edgeUrl}/api/echo/opened-in-a-tab`, { headers: NAVIGATE });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(((await res.json()) as { path: string }).path).toBe("/api/echo/opened-in-a-tab");
  });

  it("/health reports the edge as up", async () => {
    const res = await fetch(`${stack.edgeUrl}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "ok", services: { edge: "ok", config: "ok" } });
  });
});
