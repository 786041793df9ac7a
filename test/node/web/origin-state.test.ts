// The web app shows the laptop's three states live, against real processes: online (a linked origin), unreachable (its
// link up but the origin behind ORIGIN_URL gone: the "tunnel" fails) and offline (the linked origin frozen).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OWNER } from "../../support/identity.ts";
import { spawnOrigin, trustEdgeEnv, type SpawnedOrigin } from "../../support/spawn-origin.ts";
import type { Stack } from "../../support/stack.ts";
import { hasChromium, openPhone, shot, signIn, startWebStack, type PhoneBrowser } from "./browser.ts";

let stack: Stack;
let phone: PhoneBrowser;
let linked: SpawnedOrigin;

beforeAll(async () => {
  if (!hasChromium) return;
  stack = await startWebStack();
  // A second origin that holds the link; the stack's own origin (ORIGIN_URL) answers the edge's probe.
  linked = await spawnOrigin(["--edge", stack.edgeUrl], { ...trustEdgeEnv({ issuer: stack.edgeUrl }), OUTPOST_TOKEN: await stack.mintToken(OWNER) });
  phone = await openPhone();
}, 90_000);

afterAll(async () => {
  await phone?.close();
  if (linked && linked.child.exitCode === null && linked.child.signalCode === null) linked.child.kill("SIGCONT");
  await linked?.stop();
  await stack?.stop();
});

describe.skipIf(!hasChromium)("the laptop's state on the phone", () => {
  it("online, then unreachable when the tunnel fails, then offline when the laptop sleeps", async () => {
    const { page } = phone;
    await signIn(page, stack);
    const card = page.getByTestId("origin");
    await expect.poll(() => card.getAttribute("data-state"), { timeout: 15_000 }).toBe("online");
    expect(await card.textContent()).toContain("Laptop online");

    // The link is listed with the devices: this one signs in with a token that names no device, so on its own.
    await page.goto(`${stack.edgeUrl}/devices`);
    const link = page.getByTestId("origin-link");
    await link.waitFor();
    expect(await link.textContent()).toContain(OWNER);
    await page.goto(`${stack.edgeUrl}/`);
    await expect.poll(() => card.getAttribute("data-state"), { timeout: 15_000 }).toBe("online");

    // What ORIGIN_URL points at stops answering, while the linked origin keeps pinging: the tunnel is down.
    stack.origin!.child.kill("SIGKILL");
    await expect.poll(() => card.getAttribute("data-state"), { timeout: 45_000 }).toBe("unreachable");
    expect(await card.textContent()).toContain("Laptop unreachable");
    await shot(page, "origin-unreachable");

    linked.child.kill("SIGSTOP");
    await expect.poll(() => card.getAttribute("data-state"), { timeout: 15_000 }).toBe("offline");
    expect(await card.textContent()).toMatch(/Laptop offline.*last seen/s);
    expect(await card.getAttribute("data-online")).toBe("false");
    await shot(page, "origin-offline");
  }, 90_000);
});
