// CLI login approval end to end: the real `outpost login` polls (fetch does, if the CLI is not built) while the phone confirms and approves, or denies; then Devices and revoke.
import { mkdtemp, rm } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI_CLIENT_ID, DEVICE_CODE_GRANT } from "../../../shared/identity.ts";
import type { Stack } from "../../support/stack.ts";
import { hasChromium, openPhone, shot, signIn, startWebStack, type PhoneBrowser } from "./browser.ts";
import { loginDriver, type LoginDriver } from "./cli-login.ts";

let stack: Stack;
let phone: PhoneBrowser;
let home: string;
let cli: LoginDriver;

beforeAll(async () => {
  if (!hasChromium) return;
  home = await mkdtemp(join(tmpdir(), "outpost-cli-home-"));
  cli = loginDriver(home);
  if (cli.kind !== "cli") console.warn("cli/dist/outpost.mjs is not built: the device flow's polling is driven with fetch");
  stack = await startWebStack();
  phone = await openPhone();
  await signIn(phone.page, stack);
}, 120_000);

afterAll(async () => {
  await phone?.close();
  await stack?.stop();
  if (home) await rm(home, { recursive: true, force: true });
});

describe.skipIf(!hasChromium)("device login approval", () => {
  it("asks for the end of a code that came by link before Approve works, and the polling CLI signs in", async () => {
    const { page } = phone;
    const login = await cli.start(stack.edgeUrl);
    expect(login.link).toBe(`${stack.edgeUrl}/device#code=${login.code}`);
    await page.goto(login.link);
    const request = page.getByTestId("device-request");
    await request.waitFor();
    // The page shows the first half only, and the link's code leaves the address bar.
    const [first, second] = login.code.split("-") as [string, string];
    expect(await page.locator(".code-prefix").textContent()).toBe(`${first}-`);
    expect(await page.locator("main").textContent()).not.toContain(second);
    expect(page.url()).toBe(`${stack.edgeUrl}/device`);
    // What the computer says about itself is labelled as its claim.
    const claims = page.getByTestId("device-claims");
    expect(await claims.getByRole("heading", { name: "Claimed by the computer" }).count()).toBe(1);
    const claimed = (await claims.textContent()) ?? "";
    expect(claimed).toContain(hostname());
    expect(claimed).toMatch(/Linux|macOS|Windows/);
    expect(claimed).toContain("outpost-cli");
    expect(await request.textContent()).not.toContain(hostname());
    expect(await page.getByTestId("device-from").textContent()).not.toBe("");
    // Both requests come through the same loopback, so no country warning.
    expect(await page.getByTestId("country-warning").count()).toBe(0);

    const approve = page.getByRole("button", { name: "Approve" });
    const field = page.getByLabel("Type the last four letters of the code on your computer");
    expect(await approve.isDisabled()).toBe(true);
    await field.fill(second === "BBBB" ? "CCCC" : "BBBB");
    await expect.poll(() => page.locator("#confirm-error").textContent()).toContain("does not match");
    expect(await approve.isDisabled()).toBe(true);
    await field.fill(second.slice(0, 3));
    expect(await approve.isDisabled()).toBe(true);
    await field.fill(second.toLowerCase());
    expect(await field.inputValue()).toBe(second);
    await expect.poll(() => approve.isDisabled()).toBe(false);
    await shot(page, "device-review");
    await approve.click();
    await expect.poll(() => page.getByTestId("device-result").getAttribute("data-result")).toBe("approved");
    expect(await page.getByTestId("device-request").textContent()).toContain(login.code);
    await shot(page, "device-approved");
    const done = await login.exit;
    expect(done.code, done.output).toBe(0);
    expect(done.output).toContain("Signed in");
  }, 60_000);

  it("warns prominently when the request comes from another country than the phone", async () => {
    const { page } = phone;
    // Miniflare takes a request's `cf` from this header: this computer asks from Germany; the phone's requests carry
    // Miniflare's default placeholder (the United States).
    const res = await fetch(`${stack.edgeUrl}/auth/device/code`, {
      method: "POST",
      headers: { "mf-cf-blob": JSON.stringify({ country: "DE", city: "Berlin", asn: 3320, asOrganization: "Deutsche Telekom AG" }) },
      body: new URLSearchParams({ client_id: CLI_CLIENT_ID, client_name: "outpost-cli", hostname: "not-my-laptop", platform: "linux", arch: "x64" }),
    });
    const dc = (await res.json()) as { device_code: string; verification_uri_complete: string };
    await page.goto(dc.verification_uri_complete);
    const warning = page.getByTestId("country-warning");
    await warning.waitFor();
    const text = (await warning.textContent()) ?? "";
    expect(text).toContain("another country");
    expect(text).toMatch(/network in Germany, but this phone is in United States/);
    expect(await page.getByRole("alert").filter({ has: warning }).count()).toBe(1);
    expect(await page.getByTestId("device-from").textContent()).toBe("Berlin, Germany");
    expect(await page.getByTestId("device-request").textContent()).toContain("Deutsche Telekom AG · AS3320");
    expect(await page.getByTestId("device-claims").textContent()).toContain("not-my-laptop");
    await shot(page, "device-country-warning", { fullPage: true });
    await page.getByRole("button", { name: "Deny" }).click();
    await expect.poll(() => page.getByTestId("device-result").getAttribute("data-result")).toBe("denied");
    const poll = await fetch(`${stack.edgeUrl}/auth/device/token`, {
      method: "POST",
      body: new URLSearchParams({ grant_type: DEVICE_CODE_GRANT, device_code: dc.device_code, client_id: CLI_CLIENT_ID }),
    });
    expect(poll.status).toBe(400);
    expect(((await poll.json()) as { error: string }).error).toBe("access_denied");
  }, 60_000);

  it("asks for the code on plain /device, and a denial reaches the CLI", async () => {
    const { page } = phone;
    await page.goto(`${stack.edgeUrl}/device`);
    const field = page.getByLabel("Login code");
    await field.fill("ZZZZ-ZZZZ");
    await page.getByRole("button", { name: "Continue" }).click();
    await expect.poll(() => page.locator("#code-error").textContent()).toContain("No pending login has this code");
    const login = await cli.start(stack.edgeUrl);
    await field.fill(login.code.toLowerCase().replace("-", ""));
    expect(await field.inputValue()).toBe(login.code);
    await shot(page, "device-enter-code");
    await page.getByRole("button", { name: "Continue" }).click();
    await page.getByRole("button", { name: "Deny" }).click();
    await expect.poll(() => page.getByTestId("device-result").getAttribute("data-result")).toBe("denied");
    const done = await login.exit;
    expect(done.code).not.toBe(0);
    expect(done.output).toMatch(/denied/i);
  }, 60_000);

  it("lists the approved CLI on Devices and revokes it", async () => {
    const { page } = phone;
    await page.getByRole("link", { name: "See all devices" }).click();
    await page.getByRole("heading", { level: 1, name: "Devices" }).waitFor();
    const row = page.getByTestId("device").filter({ hasText: hostname() }).filter({ hasText: "CLI" });
    await row.waitFor();
    await expect.poll(() => page.getByTestId("device").filter({ hasText: "This browser" }).count()).toBe(1);
    await shot(page, "devices", { fullPage: true });
    await row.getByRole("button", { name: /^Revoke/ }).click();
    await row.getByRole("button", { name: /^Yes, revoke/ }).click();
    const revoked = page.locator('[data-testid="device"][data-revoked="true"]');
    await expect.poll(() => revoked.count()).toBe(1);
    // The CLI's stored credentials no longer work.
    expect(await cli.signedIn(stack.edgeUrl)).toBe(false);
  });
});
