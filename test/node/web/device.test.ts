// CLI login approval end to end: the real `outpost login` polls while the phone approves (QR link) or denies (typed code); then Devices and revoke.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Stack } from "../../support/stack.ts";
import { hasChromium, openPhone, shot, signIn, startWebStack, type PhoneBrowser } from "./browser.ts";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const CLI = join(ROOT, "cli", "dist", "outpost.mjs");

let stack: Stack;
let phone: PhoneBrowser;
let home: string;

interface Login {
  child: ChildProcess;
  code: string;
  /** What the CLI's QR code encodes: verification_uri_complete. */
  link: string;
  exit: Promise<{ code: number | null; output: string }>;
}

/** Starts `outpost login --url <edge>` with its own config directory and waits for it to print the code. */
async function startLogin(): Promise<Login> {
  const child = spawn(process.execPath, [CLI, "login", "--url", stack.edgeUrl, "--no-qr"], {
    env: { ...process.env, HOME: home, XDG_CONFIG_HOME: home, NO_COLOR: "1", OUTPOST_URL: "" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const exit = new Promise<{ code: number | null; output: string }>((resolve) => child.once("exit", (code) => resolve({ code, output })));
  const printed = await new Promise<{ code: string; uri: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`outpost login printed no code: ${output}`)), 15_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const code = /code:\s*([A-Z]{4}-[A-Z]{4})/.exec(output)?.[1];
      const uri = /(http:\/\/\S+\/device)\b/.exec(output)?.[1];
      if (code && uri) {
        clearTimeout(timer);
        resolve({ code, uri });
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    void exit.then(() => reject(new Error(`outpost login exited early: ${output}`)));
  });
  return { child, code: printed.code, link: `${printed.uri}#code=${printed.code}`, exit };
}

beforeAll(async () => {
  if (!existsSync(CLI)) {
    const built = spawnSync(process.execPath, [join(ROOT, "cli", "build.ts")], { cwd: ROOT, encoding: "utf8" });
    if (built.status !== 0) throw new Error(`npm run build:cli failed: ${built.stderr}`);
  }
  home = await mkdtemp(join(tmpdir(), "outpost-cli-home-"));
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
    const login = await startLogin();
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
    const login = await startLogin();
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
    const cli = page.getByTestId("device").filter({ hasText: hostname() }).filter({ hasText: "CLI" });
    await cli.waitFor();
    await expect.poll(() => page.getByTestId("device").filter({ hasText: "This browser" }).count()).toBe(1);
    await shot(page, "devices", { fullPage: true });
    await cli.getByRole("button", { name: /^Revoke/ }).click();
    await cli.getByRole("button", { name: /^Yes, revoke/ }).click();
    const revoked = page.locator('[data-testid="device"][data-revoked="true"]');
    await expect.poll(() => revoked.count()).toBe(1);
    // The CLI's stored credentials no longer work.
    const whoami = spawnSync(process.execPath, [CLI, "whoami", "--url", stack.edgeUrl], {
      env: { ...process.env, HOME: home, XDG_CONFIG_HOME: home, NO_COLOR: "1" },
      encoding: "utf8",
    });
    expect(whoami.status, whoami.stdout + whoami.stderr).not.toBe(0);
  });
});
