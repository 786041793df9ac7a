// CLI login approval end to end: the real `outpost login` polls (fetch does, if the CLI is not built) while the phone approves or denies; then Devices and revoke.
import { mkdtemp, rm } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
  it("approves a CLI login opened from its QR link, and the polling CLI signs in", async () => {
    const { page } = phone;
    const login = await cli.start(stack.edgeUrl);
    expect(login.link).toBe(`${stack.edgeUrl}/device#code=${login.code}`);
    await page.goto(login.link);
    const request = page.getByTestId("device-request");
    await request.waitFor();
    const text = (await request.textContent()) ?? "";
    expect(text).toContain(login.code);
    expect(text).toContain(hostname());
    expect(text).toMatch(/Linux|macOS|Windows/);
    await shot(page, "device-review");
    await page.getByRole("button", { name: "Approve" }).click();
    await expect.poll(() => page.getByTestId("device-result").getAttribute("data-result")).toBe("approved");
    await shot(page, "device-approved");
    const done = await login.exit;
    expect(done.code, done.output).toBe(0);
    expect(done.output).toContain("Signed in");
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
