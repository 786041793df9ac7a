// Installability and resilience in Chromium (dark mode): manifest, service worker and its caches, an ended session, and the offline page.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OWNER } from "../../support/identity.ts";
import type { Stack } from "../../support/stack.ts";
import { beat, hasChromium, openPhone, PHONE, shot, signIn, startWebStack, type PhoneBrowser } from "./browser.ts";

let stack: Stack;
let phone: PhoneBrowser;
let stopped = false;

beforeAll(async () => {
  if (!hasChromium) return;
  stack = await startWebStack();
  phone = await openPhone({ dark: true });
}, 90_000);

afterAll(async () => {
  await phone?.close();
  if (!stopped) await stack?.stop();
});

describe.skipIf(!hasChromium)("installable app", () => {
  it("links a web manifest whose icons are served", async () => {
    const { page } = phone;
    await signIn(page, stack);
    const href = await page.locator('link[rel="manifest"]').getAttribute("href");
    expect(href).toBe("/manifest.webmanifest");
    const manifest = (await (await fetch(`${stack.edgeUrl}${href}`)).json()) as {
      name: string;
      start_url: string;
      display: string;
      icons: { src: string; sizes: string; type: string; purpose?: string }[];
    };
    expect(manifest).toMatchObject({ name: "Outpost", start_url: "/", display: "standalone" });
    expect(manifest.icons.map((i) => i.sizes)).toEqual(expect.arrayContaining(["192x192", "512x512"]));
    expect(manifest.icons.some((i) => i.purpose === "maskable")).toBe(true);
    for (const icon of manifest.icons) {
      const res = await fetch(`${stack.edgeUrl}${icon.src}`);
      expect(res.status, icon.src).toBe(200);
      expect(res.headers.get("content-type"), icon.src).toContain(icon.type);
    }
  });

  it("registers the service worker, with versioned caches that hold assets but never API answers", async () => {
    const { page } = phone;
    const script = await page.evaluate(async () => (await navigator.serviceWorker.ready).active?.scriptURL);
    expect(script).toBe(`${stack.edgeUrl}/sw.js`);
    // Once it controls the page, hashed assets are cached as they are fetched (stale-while-revalidate).
    await page.reload();
    await page.getByRole("heading", { level: 1, name: "Sessions" }).waitFor();
    await beat(stack, await stack.mintToken(OWNER), "pwa-1", { name: "dark mode check", hostname: "laptop.local", status: "idle" });
    await page.locator('[data-session="pwa-1"]').waitFor();
    const cached = await page.evaluate(async () => {
      const out: Record<string, string[]> = {};
      for (const name of await caches.keys()) {
        out[name] = (await (await caches.open(name)).keys()).map((r) => new URL(r.url).pathname);
      }
      return out;
    });
    const names = Object.keys(cached);
    expect(names.some((n) => /^outpost-shell-[0-9a-f]{12}$/.test(n))).toBe(true);
    const urls = Object.values(cached).flat();
    expect(urls).toContain("/offline.html");
    expect(urls.some((u) => /^\/assets\/index-[\w-]{8}\.js$/.test(u))).toBe(true);
    expect(urls.filter((u) => /^\/(api|auth|\.well-known)\//.test(u) || u === "/" || u === "/health")).toEqual([]);
    await shot(page, "home-dark");
    await page.setViewportSize({ width: 1280, height: 800 });
    await shot(page, "home-dark-desktop");
    await page.setViewportSize(PHONE);
  });

  it("an ended session brings up sign-in on the same page instead of leaving the app", async () => {
    const { page } = phone;
    const owner = await stack.mintToken(OWNER);
    const list = (await (await fetch(`${stack.edgeUrl}/api/devices`, { headers: { authorization: `Bearer ${owner}` } })).json()) as {
      devices: { id: string; kind: string; revokedAt: number | null }[];
    };
    const browser = list.devices.find((d) => d.kind === "browser" && d.revokedAt === null)!;
    const res = await fetch(`${stack.edgeUrl}/api/devices/${browser.id}`, { method: "DELETE", headers: { authorization: `Bearer ${owner}` } });
    expect(res.status).toBe(200);
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Devices" }).click();
    await page.getByRole("heading", { level: 1, name: "Sign in" }).waitFor();
    expect(page.url()).toBe(`${stack.edgeUrl}/devices`);
    expect(await page.locator("main").textContent()).toContain("Your session has ended");
    await shot(page, "signin-dark");
  });

  it("shows the offline page when the edge is down", async () => {
    const { page } = phone;
    await stack.stop();
    stopped = true;
    await page.goto(`${stack.edgeUrl}/sessions/pwa-1`);
    await page.getByRole("heading", { name: "You are offline" }).waitFor();
    expect(page.url()).toBe(`${stack.edgeUrl}/sessions/pwa-1`);
    await page.getByRole("button", { name: "Try again" }).click();
    await expect.poll(() => page.getByRole("status").textContent()).toContain("Still unreachable");
    await shot(page, "offline-dark");
  });
});
