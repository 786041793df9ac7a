// Scoped access in Chromium against a real app behind --upstream: the framed page runs sandboxed, its own files load through the scoped cookie, and it cannot reach the web app.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SCOPED_SANDBOX } from "../../../shared/identity.ts";
import { OWNER } from "../../support/identity.ts";
import type { Stack } from "../../support/stack.ts";
import { hasChromium, openPhone, shot, signIn, startWebStack, type PhoneBrowser } from "./browser.ts";

// A 1×1 transparent PNG: an image the browser decodes (a JSON body would be blocked before any cookie question).
const PIXEL = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=", "base64");

/** A page of the laptop's app with a stylesheet, an image and a script that reports what the sandbox lets it do. */
const FILES: Record<string, [string, string | Buffer]> = {
  "/api/app/": [
    "text/html; charset=utf-8",
    '<!doctype html><title>Laptop app</title><link rel="stylesheet" href="style.css"><img id="px" src="pixel.png" alt=""><script src="app.js"></script>',
  ],
  "/api/app/style.css": ["text/css", "body { background: #eef; }"],
  "/api/app/pixel.png": ["image/png", PIXEL],
  "/api/app/app.js": [
    "text/javascript",
    `const mark = (k, v) => { document.body.dataset[k] = v; };
const attempt = (f) => { try { f(); return "reached"; } catch { return "blocked"; } };
mark("origin", self.origin);
mark("parent", attempt(() => window.parent.document.title));
mark("storage", attempt(() => localStorage.length));
mark("cookies", attempt(() => document.cookie));
const img = document.getElementById("px");
const imgDone = () => mark("img", img.naturalWidth === 1 ? "loaded" : "failed");
if (img.complete) imgDone(); else { img.onload = imgDone; img.onerror = imgDone; }
mark("script", "ran");`,
  ],
};

let stack: Stack;
let phone: PhoneBrowser;
let appServer: http.Server;
/** Paths the app was asked for, with the identity the origin verified for each. */
const seen: { path: string; email: string | undefined }[] = [];

beforeAll(async () => {
  if (!hasChromium) return;
  appServer = http.createServer((req, res) => {
    seen.push({ path: req.url ?? "", email: req.headers["x-outpost-email"] as string | undefined });
    const file = FILES[req.url ?? ""];
    if (!file) {
      res.writeHead(404, { "content-type": "text/plain" }).end("no such file");
      return;
    }
    res.writeHead(200, { "content-type": file[0] }).end(file[1]);
  });
  await new Promise<void>((resolve) => appServer.listen(0, "127.0.0.1", resolve));
  stack = await startWebStack({}, ["--upstream", `http://127.0.0.1:${(appServer.address() as AddressInfo).port}`]);
  phone = await openPhone();
}, 90_000);

afterAll(async () => {
  await phone?.close();
  await stack?.stop();
  await new Promise<void>((resolve) => (appServer ? appServer.close(() => resolve()) : resolve()));
});

/** The data-* marks the framed page's script left, once it ran. */
async function marksOf(page: PhoneBrowser["page"], selector: string): Promise<Record<string, string>> {
  const frame = page.frameLocator(selector);
  await frame.locator("body[data-script=ran][data-img]").waitFor({ timeout: 10_000 });
  return frame.locator("body").evaluate((b) => ({ ...(b as HTMLElement).dataset }) as Record<string, string>);
}

describe.skipIf(!hasChromium)("scoped access in a sandboxed frame", () => {
  it("has no default path: the form asks for one", async () => {
    const { page } = phone;
    await signIn(page, stack);
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Laptop app" }).click();
    expect(await page.getByLabel("Path").inputValue()).toBe("");
  });

  it("loads the app's page, stylesheet, image and script through the scoped cookie, in an opaque origin", async () => {
    const { page } = phone;
    seen.splice(0);
    await page.getByLabel("Path").fill("/api/app/");
    await page.getByRole("button", { name: "Open" }).click();
    const frame = page.getByTestId("scoped-frame");
    expect(await frame.getAttribute("sandbox")).toBe(SCOPED_SANDBOX);
    const marks = await marksOf(page, '[data-testid="scoped-frame"]');
    expect(marks).toMatchObject({ origin: "null", parent: "blocked", storage: "blocked", cookies: "blocked", img: "loaded", script: "ran" });
    // Every file reached the app as the signed-in owner: the edge let each request through on the scoped cookie alone.
    expect(seen.map((s) => s.path).sort()).toEqual(["/api/app/", "/api/app/app.js", "/api/app/pixel.png", "/api/app/style.css"]);
    expect(new Set(seen.map((s) => s.email))).toEqual(new Set([OWNER]));
    await shot(page, "open-laptop-app-sandboxed");
  });

  it("the same page opened in a tab of its own is sandboxed by the edge's CSP", async () => {
    const tab = await phone.context.newPage();
    try {
      const res = await tab.goto(`${stack.edgeUrl}/api/app/`);
      expect(res?.status()).toBe(200);
      expect(res?.headers()["content-security-policy"]).toBe(`sandbox ${SCOPED_SANDBOX}; frame-ancestors 'self'`);
      await tab.locator("body[data-script=ran][data-img]").waitFor({ timeout: 10_000 });
      const marks = await tab.locator("body").evaluate((b) => ({ ...(b as HTMLElement).dataset }) as Record<string, string>);
      expect(marks).toMatchObject({ origin: "null", storage: "blocked", cookies: "blocked", img: "loaded" });
    } finally {
      await tab.close();
    }
  });

  it("the web app itself may not be framed, by anyone", async () => {
    const res = await fetch(`${stack.edgeUrl}/open`);
    expect(res.headers.get("content-security-policy")).toBe("frame-ancestors 'none'");
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    await res.body?.cancel();
  });
});
