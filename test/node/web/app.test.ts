// The web app in Chromium at 390×844 against the real stack: enrollment sign-in, live presence with expiry and resume, a session's timeline, scoped access.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WebSocketRoute } from "playwright-core";
import { OWNER } from "../../support/identity.ts";
import type { Stack } from "../../support/stack.ts";
import { beat, hasChromium, openPhone, shot, signIn, startWebStack, TTL_SECONDS, type PhoneBrowser } from "./browser.ts";

let stack: Stack;
let phone: PhoneBrowser;
let token: string;
/** Every presence socket the page opens, in order, and a way to drop the current one as a flaky network would. */
const sockets: { url: string; route: WebSocketRoute }[] = [];

beforeAll(async () => {
  if (!hasChromium) return;
  stack = await startWebStack();
  token = await stack.mintToken(OWNER);
  phone = await openPhone();
  await phone.page.routeWebSocket(/\/api\/presence\/ws/, (route) => {
    sockets.push({ url: route.url(), route });
    route.connectToServer();
  });
}, 90_000);

afterAll(async () => {
  await phone?.close();
  await stack?.stop();
});

describe.skipIf(!hasChromium)("web app", () => {
  it("signs in with the enrollment link and stays signed in across a reload (refresh cookie, token in memory)", async () => {
    const { page } = phone;
    const scripts: string[] = [];
    page.on("request", (r) => r.resourceType() === "script" && scripts.push(new URL(r.url()).pathname));
    await signIn(page, stack);
    await expect.poll(() => page.getByTestId("link").getAttribute("data-link")).toBe("live");
    // Outpost is its own issuer here: supabase-js is never loaded.
    expect(scripts.length).toBeGreaterThan(0);
    expect(scripts.filter((s) => s.includes("supabase"))).toEqual([]);
    // The token is in memory only: nothing in storage, and the refresh cookie is HttpOnly.
    expect(await page.evaluate(() => [localStorage.length, sessionStorage.length, document.cookie])).toEqual([0, 0, ""]);
    await page.reload();
    await page.getByRole("heading", { level: 1, name: "Sessions" }).waitFor();
    await expect.poll(() => page.getByTestId("link").getAttribute("data-link")).toBe("live");
    await shot(page, "home-empty");
  });

  it("shows a session started with the API live, then as expired within TTL + 2 s of its last heartbeat, without a reload", async () => {
    const { page } = phone;
    await beat(stack, token, "web-live-1", { name: "refactor auth", hostname: "laptop.local", pid: 4242, status: "working" });
    const card = page.locator('[data-session="web-live-1"]');
    await card.waitFor({ timeout: 5000 });
    await expect.poll(() => card.getAttribute("data-status")).toBe("working");
    expect(await card.textContent()).toContain("laptop.local");
    for (let i = 0; i < 2; i++) {
      await new Promise((r) => setTimeout(r, 1100));
      await beat(stack, token, "web-live-1", {});
    }
    const lastBeat = Date.now();
    await shot(page, "home-live");
    await expect.poll(() => card.getAttribute("data-status"), { timeout: (TTL_SECONDS + 2) * 1000, interval: 100 }).toBe("expired");
    const elapsed = Date.now() - lastBeat;
    expect(elapsed).toBeLessThanOrEqual((TTL_SECONDS + 2) * 1000);
    await expect.poll(() => page.getByTestId("alert").count()).toBe(1);
    expect(await page.getByTestId("alert").textContent()).toContain("refactor auth");
    await shot(page, "home-expired");
  });

  it("a session's page shows its timeline", async () => {
    const { page } = phone;
    await page.getByRole("link", { name: "refactor auth" }).first().click();
    await page.waitForURL(/\/sessions\/web-live-1$/);
    await page.getByRole("heading", { level: 1, name: "refactor auth" }).waitFor();
    const timeline = page.getByTestId("timeline");
    await expect.poll(() => timeline.locator("li").evaluateAll((els) => els.map((e) => e.getAttribute("data-event")))).toEqual(["expired", "online"]);
    expect(await page.getByTestId("session-detail").getAttribute("data-status")).toBe("expired");
    await shot(page, "session-timeline", { fullPage: true });
    // A deep link opens the same page after a reload (the Worker's SPA fallback).
    await page.reload();
    await page.getByTestId("timeline").waitFor();
  });

  it("reconnects after the socket drops and resumes from the last seq, so events sent meanwhile are not missed", async () => {
    const { page } = phone;
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Sessions" }).click();
    await expect.poll(() => page.getByTestId("link").getAttribute("data-link")).toBe("live");
    const before = sockets.length;
    // Drop the connection from the server's side, as a network change does, and start a session while it is down.
    await sockets.at(-1)!.route.close({ code: 4000, reason: "network changed" });
    await beat(stack, token, "web-missed-2", { name: "missed while offline", hostname: "laptop.local" });
    await page.locator('[data-session="web-missed-2"]').waitFor({ timeout: 10_000 });
    expect(sockets.length).toBeGreaterThan(before);
    const resumed = new URL(sockets.at(-1)!.url);
    expect(Number(resumed.searchParams.get("after"))).toBeGreaterThan(0);
    expect(resumed.searchParams.get("ticket")).toBeTruthy();
    await expect.poll(() => page.getByTestId("link").getAttribute("data-link")).toBe("live");
  });

  it("opens the laptop's app through scoped access in a frame", async () => {
    const { page } = phone;
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Laptop app" }).click();
    await page.getByLabel("Path").fill("/api/echo/");
    await page.getByRole("button", { name: "Open" }).click();
    const frame = page.frameLocator('[data-testid="scoped-frame"]');
    await expect
      .poll(
        async () =>
          (await frame
            .locator("body")
            .textContent({ timeout: 1000 })
            .catch(() => "")) ?? "",
        { timeout: 10_000 },
      )
      .toContain('"/api/echo/"');
    await shot(page, "open-laptop-app");
  });
});
