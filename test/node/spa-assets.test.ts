// The SPA from Workers static assets over real HTTP: index.html never cached, hashed assets immutable, Worker routes JSON.
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer } from "../support/http-client.ts";
import { OWNER } from "../support/identity.ts";
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
    // No other site may frame the web app (clickjacking an approval, say).
    expect(res.headers.get("content-security-policy")).toBe("frame-ancestors 'none'");
    expect(res.headers.get("x-frame-options")).toBe("DENY");
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

  // A missing chunk (e.g. an old hash after a deploy) must not come back as index.html cached for a year: /assets/* runs
  // the Worker first (worker/routes/assets.ts), which turns the SPA fallback into a 404.
  it("a missing file under /assets/ requested as a script is a 404, not immutable index.html", async () => {
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
    const headers = { ...NAVIGATE, ...bearer(await stack.mintToken(OWNER)) };
    const res = await fetch(`${stack.edgeUrl}/api/echo/opened-in-a-tab`, { headers });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(((await res.json()) as { path: string }).path).toBe("/api/echo/opened-in-a-tab");

    // Without credentials it is still the Worker that answers: a JSON 401, not the app's index.html.
    const anonymous = await fetch(`${stack.edgeUrl}/api/echo/opened-in-a-tab`, { headers: NAVIGATE });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("content-type")).toMatch(/^application\/json/);
    await anonymous.body?.cancel();
  });

  it("/health reports the edge as up", async () => {
    const res = await fetch(`${stack.edgeUrl}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "ok", services: { edge: "ok", config: "ok" } });
  });
});
