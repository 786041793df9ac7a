// outpost login --email on an edge that uses Supabase: supabase-js against a stand-in Supabase Auth (GoTrue) server
// on loopback, whose HS256 tokens the real edge verifies with SUPABASE_JWT_SECRET.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack, type Stack } from "../../support/stack.ts";
import { cliEntry, oneLineError, runCli, tempDir } from "./helpers.ts";

const SECRET = "a-test-only-supabase-jwt-secret-of-40-chars";
const ANON_KEY = "test-anon-key";
const PASSWORD = "correct horse battery staple";

let stack: Stack;
let gotrue: http.Server;
let gotrueUrl: string;
const calls: string[] = [];
let refreshCount = 0;

async function userToken(email: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ email, role: "authenticated" })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuer(`${gotrueUrl}/auth/v1`)
    .setAudience("authenticated")
    .setSubject(`user-${email}`)
    .setIssuedAt(now)
    .setExpirationTime(now + 3600)
    .sign(new TextEncoder().encode(SECRET));
}

async function session(email: string, refresh: string) {
  const now = Math.floor(Date.now() / 1000);
  return {
    access_token: await userToken(email),
    token_type: "bearer",
    expires_in: 3600,
    expires_at: now + 3600,
    refresh_token: refresh,
    user: {
      id: `user-${email}`,
      aud: "authenticated",
      role: "authenticated",
      email,
      app_metadata: {},
      user_metadata: {},
      created_at: new Date().toISOString(),
    },
  };
}

beforeAll(async () => {
  gotrue = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", async () => {
      const url = new URL(req.url ?? "/", "http://x");
      calls.push(`${req.method} ${url.pathname}${url.search}`);
      const send = (status: number, data: unknown) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(data));
      };
      if (req.headers.apikey !== ANON_KEY) return send(401, { message: "Invalid API key" });
      const data = body ? (JSON.parse(body) as Record<string, string>) : {};
      if (url.pathname === "/auth/v1/token" && url.searchParams.get("grant_type") === "password") {
        if (data.password !== PASSWORD) return send(400, { code: "invalid_credentials", error_code: "invalid_credentials", msg: "Invalid login credentials" });
        return send(200, await session(data.email!, "refresh-1"));
      }
      if (url.pathname === "/auth/v1/token" && url.searchParams.get("grant_type") === "refresh_token") {
        if (!data.refresh_token?.startsWith("refresh-")) return send(400, { code: "refresh_token_not_found", msg: "Invalid Refresh Token" });
        refreshCount++;
        return send(200, await session("owner@example.com", `refresh-${refreshCount + 1}`));
      }
      if (url.pathname === "/auth/v1/logout") {
        res.writeHead(204);
        return res.end();
      }
      send(404, { message: "not found" });
    });
  });
  await new Promise<void>((resolve) => gotrue.listen(0, "127.0.0.1", resolve));
  gotrueUrl = `http://127.0.0.1:${(gotrue.address() as AddressInfo).port}`;
  [stack] = await Promise.all([startStack({ vars: { AUTH_PROVIDER: "supabase", SUPABASE_URL: gotrueUrl, SUPABASE_JWT_SECRET: SECRET } }), cliEntry()]);
}, 90_000);

afterAll(async () => {
  await stack?.stop();
  await new Promise<void>((resolve) => (gotrue ? gotrue.close(() => resolve()) : resolve()));
});

describe("outpost login --email (Supabase)", () => {
  it("signs in with email and password, stores a Supabase session, refreshes it at Supabase, and logs out", async () => {
    const xdg = tempDir();
    const login = await runCli(["login", "--url", stack.edgeUrl, "--email", "owner@example.com", "--anon-key", ANON_KEY], {
      xdg,
      env: { OUTPOST_PASSWORD: PASSWORD },
    });
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toContain("as owner@example.com (owner)");
    const file = join(xdg, "outpost", "credentials.json");
    const creds = JSON.parse(readFileSync(file, "utf8")) as { provider: string; refresh_token: string; supabase: { url: string; anon_key: string } };
    expect(creds).toMatchObject({ provider: "supabase", refresh_token: "refresh-1", supabase: { url: gotrueUrl, anon_key: ANON_KEY } });

    const whoami = await runCli(["whoami", "--json"], { xdg });
    expect(JSON.parse(whoami.stdout)).toMatchObject({ email: "owner@example.com", provider: "supabase" });

    writeFileSync(file, JSON.stringify({ ...creds, expires_at: Date.now() + 10_000 }), { mode: 0o600 });
    expect((await runCli(["whoami"], { xdg })).code).toBe(0);
    expect(calls).toContain("POST /auth/v1/token?grant_type=refresh_token");
    expect((JSON.parse(readFileSync(file, "utf8")) as { refresh_token: string }).refresh_token).toBe("refresh-2");

    const logout = await runCli(["logout"], { xdg });
    expect(logout.code, logout.stderr).toBe(0);
    expect(calls.some((c) => c.startsWith("POST /auth/v1/logout"))).toBe(true);
  });

  it("a wrong password is an authentication error (exit 4), nothing stored", async () => {
    const xdg = tempDir();
    const result = await runCli(["login", "--url", stack.edgeUrl, "--email", "owner@example.com", "--anon-key", ANON_KEY], {
      xdg,
      env: { OUTPOST_PASSWORD: "wrong" },
    });
    expect(result.code).toBe(4);
    expect(oneLineError(result)).toMatch(/Supabase refused the sign-in: Invalid login credentials/);
  });

  it("an account the edge does not allow: exit 4, and the Supabase session is not stored", async () => {
    const xdg = tempDir();
    const result = await runCli(["login", "--url", stack.edgeUrl, "--email", "stranger@example.com", "--anon-key", ANON_KEY], {
      xdg,
      env: { OUTPOST_PASSWORD: PASSWORD },
    });
    expect(result.code).toBe(4);
    expect(oneLineError(result)).toMatch(/not allowed here/);
    const { existsSync } = await import("node:fs");
    expect(existsSync(join(xdg, "outpost", "credentials.json"))).toBe(false);
  });

  it("without the anon key: exit 3 naming --anon-key", async () => {
    const result = await runCli(["login", "--url", stack.edgeUrl, "--email", "owner@example.com"], { env: { OUTPOST_PASSWORD: PASSWORD } });
    expect(result.code).toBe(3);
    expect(oneLineError(result)).toMatch(/anon key.*--anon-key/);
  });

  it("--email on an edge without Supabase is a usage error", async () => {
    const plain = await startStack();
    try {
      const result = await runCli(["login", "--url", plain.edgeUrl, "--email", "owner@example.com"], { env: { OUTPOST_PASSWORD: PASSWORD } });
      expect(result.code).toBe(2);
      expect(oneLineError(result)).toMatch(/does not use Supabase sign-in/);
    } finally {
      await plain.stop();
    }
  });
});
