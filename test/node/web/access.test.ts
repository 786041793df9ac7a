// The access list page in Chromium at 390×844 against the real stack: each grant shows when it ends, and an owner grants a role for a while.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OWNER } from "../../support/identity.ts";
import type { Stack } from "../../support/stack.ts";
import { hasChromium, openPhone, shot, signIn, startWebStack, type PhoneBrowser } from "./browser.ts";

let stack: Stack;
let phone: PhoneBrowser;
let token: string;

beforeAll(async () => {
  if (!hasChromium) return;
  stack = await startWebStack();
  token = await stack.mintToken(OWNER);
  phone = await openPhone();
}, 90_000);

afterAll(async () => {
  await phone?.close();
  await stack?.stop();
});

async function grant(email: string, body: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${stack.edgeUrl}/api/access/${encodeURIComponent(email)}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`grant ${email}: ${res.status} ${await res.text()}`);
}

describe.skipIf(!hasChromium)("the access page", () => {
  it("lists each entry with when it ends: a date for grants that end, none for the others", async () => {
    const { page } = phone;
    const end = new Date(Date.now() + 3 * 86_400_000);
    end.setUTCSeconds(0, 0);
    await grant("ends@example.com", { role: "viewer", expiresAt: end.toISOString() });
    await grant("stays@example.com", { role: "member" });
    await signIn(page, stack);
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Access" }).click();
    await page.getByRole("heading", { level: 1, name: "Access" }).waitFor();

    const ends = page.locator('[data-testid="access-entry"][data-email="ends@example.com"]');
    await ends.waitFor();
    expect(await ends.getAttribute("data-ends")).toBe(end.toISOString());
    // The page writes the date in the phone's own format; what it shows is what the browser makes of that instant.
    const shown = await page.evaluate((iso) => new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" }), end.toISOString());
    const text = await ends.getByTestId("ends").textContent();
    expect(text).toContain(`Ends ${shown}`);
    expect(text).toMatch(/in (2|3) days|in 7\d h/);
    expect(await ends.getByTestId("ends").locator("time").getAttribute("datetime")).toBe(end.toISOString());

    const stays = page.locator('[data-testid="access-entry"][data-email="stays@example.com"]');
    expect(await stays.getAttribute("data-ends")).toBe("never");
    expect(await stays.getByTestId("ends").textContent()).toBe("No end date");
    const owner = page.locator(`[data-testid="access-entry"][data-email="${OWNER}"]`);
    expect(await owner.getByTestId("ends").textContent()).toBe("Set in the settings, no end");
    await shot(page, "access-list", { fullPage: true });
  });

  it("grants a role for a week from the form, and the new entry shows its end", async () => {
    const { page } = phone;
    const before = Date.now();
    await page.getByLabel("Email", { exact: true }).fill("week@example.com");
    await page.getByLabel("Role", { exact: true }).selectOption("member");
    await page.getByLabel("Ends", { exact: true }).selectOption({ label: "1 week" });
    await page.getByRole("button", { name: "Grant access" }).click();
    const entry = page.locator('[data-testid="access-entry"][data-email="week@example.com"]');
    await entry.waitFor({ timeout: 10_000 });
    const ends = Date.parse((await entry.getAttribute("data-ends")) ?? "");
    const week = 7 * 86_400_000;
    expect(ends).toBeGreaterThanOrEqual(before + week);
    expect(ends).toBeLessThanOrEqual(Date.now() + week);
    expect(await entry.getByTestId("ends").textContent()).toMatch(/^Ends .+ \(in (6|7) days\)$/);

    // Removing it takes it off the list.
    await entry.getByRole("button", { name: "Remove week@example.com" }).click();
    await entry.waitFor({ state: "detached", timeout: 10_000 });
  });
});
