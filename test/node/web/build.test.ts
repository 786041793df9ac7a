// The built web app (web/dist from `npm run build:web`): the initial-JavaScript budget, lazy supabase-js, the stamped service worker.
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { BUDGET_BYTES, measureDist } from "../../../web/vite.config.ts";

const DIST = fileURLToPath(new URL("../../../web/dist/", import.meta.url));
let report: ReturnType<typeof measureDist>;

beforeAll(() => {
  // `npm test` builds web/dist first; run `npm run build:web` when calling vitest directly.
  if (!existsSync(`${DIST}index.html`)) throw new Error("web/dist is not built: run `npm run build:web`");
  report = measureDist(DIST);
});

describe("web build", () => {
  it("keeps the initial JavaScript under 100 KB gzipped", () => {
    expect(BUDGET_BYTES).toBe(100 * 1024);
    expect(report.files.filter((f) => f.kind === "initial").length).toBeGreaterThan(0);
    expect(report.initialGzip).toBeGreaterThan(1000);
    expect(report.initialGzip).toBeLessThan(BUDGET_BYTES);
  });

  it("loads supabase-js lazily, never from index.html", () => {
    const lazy = report.files.filter((f) => f.kind === "lazy").map((f) => f.file);
    expect(lazy.some((f) => /^assets\/supabase-[\w-]{8}\.js$/.test(f))).toBe(true);
    const initial = report.files.filter((f) => f.kind === "initial");
    for (const f of initial) expect(readFileSync(`${DIST}${f.file}`, "utf8")).not.toContain("GoTrueClient");
  });

  it("puts hashed files under /assets/ and a stable, build-stamped /sw.js at the root", () => {
    const html = readFileSync(`${DIST}index.html`, "utf8");
    expect(html).toMatch(/<script type="module" crossorigin src="\/assets\/index-[\w-]{8}\.js"><\/script>/);
    expect(html).toContain('<link rel="manifest" href="/manifest.webmanifest"');
    const sw = readFileSync(`${DIST}sw.js`, "utf8");
    expect(sw).not.toContain("__OUTPOST_BUILD_ID__");
    expect(sw).toMatch(/[`'"][0-9a-f]{12}[`'"]/);
    expect(sw).not.toMatch(/^\s*(import|export)\b/m);
    for (const file of ["offline.html", "manifest.webmanifest", "icons/icon.svg", "icons/icon-192.png", "icons/icon-512.png", "_headers"]) {
      expect(existsSync(`${DIST}${file}`), file).toBe(true);
    }
  });
});
