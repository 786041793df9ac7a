// Supabase sign-in in Chromium: the edge publishes the anon key, supabase-js loads on demand, and a password sign-in against a fake Supabase Auth reaches home.
import { createServer, type Server } from "node:http";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OWNER } from "../../support/identity.ts";
import type { Stack } from "../../support/stack.ts";
import { hasChromium, openPhone, shot, startWebStack, type PhoneBrowser } from "./browser.ts";

const SECRET = "a-supabase-jwt-secret-for-tests-only-0123456789";
const ANON_KEY = "anon-key-for-tests";
const PASSWORD = "correct horse battery";

let stack: Stack;
let phone: PhoneBrowser;
let supabase: Server;
let supabaseUrl: string;
const magicLinks: { email: string; redirectTo: string | null }[] = [];

/** Just enough of Supabase Auth (GoTrue) for supabase-js: settings, password grant, magic link, logout; CORS for the app. */
function fakeSupabase(): Promise<Server> {
  const server = createServer(async (req, res) => {
    res.setHeader("access-control-allow-origin", "*");
    res.setHeader("access-control-allow-headers", "*");
    res.setHeader("access-control-allow-methods", "GET, POST, OPTIONS");
    if (req.method === "OPTIONS") return void res.writeHead(204).end();
    const url = new URL(req.url ?? "/", supabaseUrl);
    let raw = "";
    for await (const chunk of req) raw += chunk;
    const body = raw ? (JSON.parse(raw) as Record<string, string>) : {};
    const json = (status: number, value: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(value));
    if (req.headers.apikey !== ANON_KEY) return json(401, { message: "Invalid API key" });
    if (url.pathname === "/auth/v1/settings") return json(200, { external: { email: true, github: true, google: false } });
    if (url.pathname === "/auth/v1/otp") {
      magicLinks.push({ email: body.email ?? "", redirectTo: url.searchParams.get("redirect_to") });
      return json(200, {});
    }
    if (url.pathname === "/auth/v1/logout") return void res.writeHead(204).end();
    if (url.pathname === "/auth/v1/token" && url.searchParams.get("grant_type") === "password") {
      if (body.password !== PASSWORD) return json(400, { code: "invalid_credentials", error_code: "invalid_credentials", msg: "Invalid login credentials" });
      const now = Math.floor(Date.now() / 1000);
      const user = {
        id: "6f1c2a52-0000-4000-8000-000000000001",
        aud: "authenticated",
        role: "authenticated",
        email: body.email,
        app_metadata: {},
        user_metadata: {},
        created_at: new Date().toISOString(),
      };
      const access = await new SignJWT({ email: body.email, role: "authenticated", is_anonymous: false })
        .setProtectedHeader({ alg: "HS256", typ: "JWT" })
        .setIssuer(`${supabaseUrl}/auth/v1`)
        .setAudience("authenticated")
        .setSubject(user.id)
        .setIssuedAt(now)
        .setExpirationTime(now + 3600)
        .sign(new TextEncoder().encode(SECRET));
      return json(200, { access_token: access, token_type: "bearer", expires_in: 3600, expires_at: now + 3600, refresh_token: "refresh-1", user });
    }
    return json(404, { message: "not faked" });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

beforeAll(async () => {
  if (!hasChromium) return;
  supabase = await fakeSupabase();
  supabaseUrl = `http://127.0.0.1:${(supabase.address() as { port: number }).port}`;
  stack = await startWebStack({ AUTH_PROVIDER: "supabase", SUPABASE_URL: supabaseUrl, SUPABASE_JWT_SECRET: SECRET, SUPABASE_ANON_KEY: ANON_KEY });
  phone = await openPhone();
}, 90_000);

afterAll(async () => {
  await phone?.close();
  await stack?.stop();
  if (supabase) await new Promise((resolve) => supabase.close(resolve));
});

describe.skipIf(!hasChromium)("Supabase sign-in", () => {
  it("publishes the anon key in the openid-configuration", async () => {
    const meta = (await (await fetch(`${stack.edgeUrl}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(meta).toMatchObject({ auth_provider: "supabase", supabase_url: supabaseUrl, supabase_anon_key: ANON_KEY });
  });

  it("loads supabase-js for the sign-in page and offers password, magic link and the enabled OAuth providers", async () => {
    const { page } = phone;
    const scripts: string[] = [];
    page.on("request", (r) => r.resourceType() === "script" && scripts.push(new URL(r.url()).pathname));
    await page.goto(`${stack.edgeUrl}/devices`);
    await page.getByRole("heading", { level: 1, name: "Sign in" }).waitFor();
    await page.getByRole("button", { name: "Continue with GitHub" }).waitFor();
    expect(await page.getByRole("button", { name: "Continue with Google" }).count()).toBe(0);
    expect(scripts.some((s) => /^\/assets\/supabase-[\w-]{8}\.js$/.test(s))).toBe(true);
    await page.getByLabel("Email").fill(OWNER);
    await page.getByRole("button", { name: "Email me a sign-in link" }).click();
    await page.getByText(`Check ${OWNER} for a sign-in link`).waitFor();
    // The link comes back to the page the user was on.
    expect(magicLinks).toEqual([{ email: OWNER, redirectTo: `${stack.edgeUrl}/devices` }]);
    await shot(page, "signin-supabase");
  });

  it("signs in with email and password, with the Supabase token used at the edge (and its WebSocket)", async () => {
    const { page } = phone;
    await page.getByLabel("Password").fill("wrong password");
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await page.getByText("Invalid login credentials").waitFor();
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await page.getByRole("heading", { level: 1, name: "Devices" }).waitFor();
    expect(page.url()).toBe(`${stack.edgeUrl}/devices`);
    expect(await page.locator(".who").textContent()).toContain(OWNER);
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Sessions" }).click();
    await expect.poll(() => page.getByTestId("link").getAttribute("data-link")).toBe("live");
    // Tokens stay in memory: nothing written to storage.
    expect(await page.evaluate(() => [localStorage.length, Object.keys(sessionStorage).filter((k) => !k.startsWith("outpost."))])).toEqual([0, []]);
  });
});
