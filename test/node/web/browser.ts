// Browser tests' support: the real stack on a known port, Debian's Chromium through playwright-core at 390×844, sign-in and screenshots.
import { existsSync, mkdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { mintEnrollmentLink } from "../../../shared/enrollment.ts";
import { OWNER, TEST_SIGNING_KEY } from "../../support/identity.ts";
import { startStack, type Stack } from "../../support/stack.ts";

const CHROMIUM = "/usr/bin/chromium";
export const PHONE = { width: 390, height: 844 };
export const TTL_SECONDS = 3;
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const SHOTS = join(ROOT, "test-output", "web");

/**
 * Chromium is a system package (Debian's); .ci/run installs it. Without it the browser tests are skipped on a developer's
 * machine, but run (and fail loudly) in CI: any CI value but "", "0" or "false" counts.
 */
const IN_CI = !["", "0", "false"].includes(process.env.CI ?? "");
const CHROMIUM_FOUND = existsSync(CHROMIUM);
export const hasChromium = CHROMIUM_FOUND || IN_CI;
// Written past the console, which Vitest silences for tests that did not fail.
if (!CHROMIUM_FOUND && !IN_CI) process.stderr.write(`browser tests skipped: no Chromium at ${CHROMIUM} (under CI=true they fail)\n`);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * The stack with PUBLIC_URL set to the edge's real address, so the browser's Origin is the issuer's (refresh, device
 * approval and the presence WebSocket all check it) and enrollment links and the CLI's verification URL point here.
 */
export async function startWebStack(vars: Record<string, string> = {}, originArgs: string[] = []): Promise<Stack> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const publicUrl = `http://127.0.0.1:${port}`;
    try {
      return await startStack({
        port,
        originArgs,
        vars: { PUBLIC_URL: publicUrl, HEARTBEAT_TTL_SECONDS: String(TTL_SECONDS), HEARTBEAT_INTERVAL_SECONDS: "1", ...vars },
      });
    } catch (err) {
      // Someone else took the port between our probe and wrangler's listen: try another.
      if (attempt >= 2) throw err;
    }
  }
}

export interface PhoneBrowser {
  context: BrowserContext;
  page: Page;
  close(): Promise<void>;
}

/** A fresh Chromium profile at a phone's viewport; `dark` asks for the dark color scheme. */
export async function openPhone(options: { dark?: boolean } = {}): Promise<PhoneBrowser> {
  if (!CHROMIUM_FOUND) throw new Error(`no Chromium at ${CHROMIUM}: CI runs the browser tests and needs it (.ci/run installs Debian's chromium)`);
  const profile = await mkdtemp(join(tmpdir(), "outpost-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: PHONE,
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    colorScheme: options.dark ? "dark" : "light",
    serviceWorkers: "allow",
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    async close() {
      await context.close().catch(() => undefined);
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** A single-use owner enrollment link for this stack, as `npm start` prints one. */
async function enrollmentUrl(stack: Stack, email = OWNER): Promise<string> {
  const link = await mintEnrollmentLink({ signingKey: TEST_SIGNING_KEY, publicUrl: stack.edgeUrl, email });
  return link.url;
}

/** Signs the page in by opening an enrollment link, and waits for the home page. */
export async function signIn(page: Page, stack: Stack, email = OWNER): Promise<void> {
  await page.goto(await enrollmentUrl(stack, email));
  await page.getByRole("heading", { level: 1, name: "Sessions" }).waitFor();
  await page.waitForURL(`${stack.edgeUrl}/`);
}

export async function shot(page: Page, name: string, options: { fullPage?: boolean } = {}): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: options.fullPage ?? false });
}

/** Heartbeats through the real API, as an agent (or `outpost run`) sends them. */
export async function beat(stack: Stack, token: string, id: string, body: Record<string, unknown> = {}): Promise<void> {
  const res = await fetch(`${stack.edgeUrl}/api/heartbeat/${encodeURIComponent(id)}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`heartbeat ${id}: ${res.status} ${await res.text()}`);
}
