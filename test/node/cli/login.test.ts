// The device-code login end to end: the built CLI against the real stack, approved through the API as the phone does.
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack, type Stack } from "../../support/stack.ts";
import { cliEntry, closedPort, decideLogin, oneLineError, runCli, startCli, tempDir } from "./helpers.ts";

let stack: Stack;

beforeAll(async () => {
  [stack] = await Promise.all([startStack(), cliEntry()]);
}, 90_000);

afterAll(async () => {
  await stack?.stop();
});

interface StoredCredentials {
  url: string;
  access_token: string;
  refresh_token: string;
  expires_at: number;
  device_id: string;
  email?: string;
}

const credentialsFile = (xdg: string) => join(xdg, "outpost", "credentials.json");
const readCreds = (xdg: string) => JSON.parse(readFileSync(credentialsFile(xdg), "utf8")) as StoredCredentials;

/** Runs `outpost login`, approves (or denies) the code it prints, and returns the finished run. */
async function login(xdg: string, decision: "approve" | "deny" = "approve", email = "owner@example.com") {
  const cli = await startCli(["login", "--url", stack.edgeUrl], { xdg });
  const [, code] = await cli.waitFor(/code: ([B-Z]{4}-[B-Z]{4})/);
  expect(cli.stdout).toContain("http://localhost:8787/device");
  await decideLogin(stack, code!, decision, email);
  return cli.done;
}

describe("outpost login (device flow)", () => {
  it("approved on the phone: credentials stored 0600, then whoami, sessions, devices work; tokens are never printed", async () => {
    const xdg = tempDir();
    const result = await login(xdg);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("Signed in to");
    expect(result.stdout).toContain("owner@example.com (owner)");
    expect(result.stderr).toContain("Approved");
    expect(statSync(credentialsFile(xdg)).mode & 0o777).toBe(0o600);
    expect(statSync(join(xdg, "outpost")).mode & 0o777).toBe(0o700);
    const creds = readCreds(xdg);
    expect(creds).toMatchObject({ url: stack.edgeUrl, email: "owner@example.com" });
    expect(creds.device_id).toMatch(/^dev_/);

    const whoami = await runCli(["whoami", "--json"], { xdg });
    expect(whoami.code, whoami.stderr).toBe(0);
    expect(JSON.parse(whoami.stdout)).toMatchObject({ email: "owner@example.com", role: "owner", deviceId: creds.device_id, tokenSource: "file" });

    const human = await runCli(["whoami"], { xdg });
    expect(human.stdout).toMatch(/^owner@example\.com$/m);
    expect(human.stdout).toMatch(/refreshed automatically/);

    const sessions = await runCli(["sessions", "--json"], { xdg });
    expect(sessions.code, sessions.stderr).toBe(0);
    expect(JSON.parse(sessions.stdout)).toMatchObject({ sessions: expect.any(Array) });

    const devices = await runCli(["devices", "--json"], { xdg });
    expect(devices.code).toBe(0);
    const list = JSON.parse(devices.stdout) as { devices: { id: string; kind: string }[]; current: string };
    expect(list.current).toBe(creds.device_id);
    expect(list.devices).toContainEqual(expect.objectContaining({ id: creds.device_id, kind: "cli" }));

    for (const r of [result, whoami, human, sessions, devices]) {
      expect(r.stdout + r.stderr).not.toContain(creds.access_token);
      expect(r.stdout + r.stderr).not.toContain(creds.refresh_token);
    }
  });

  it("denied on the phone: exit 4 with a clear message, nothing stored", async () => {
    const xdg = tempDir();
    const result = await login(xdg, "deny");
    expect(result.code).toBe(4);
    expect(oneLineError({ ...result, stderr: result.stderr.replace(/^Waiting.*\n/m, "") })).toMatch(/the login was denied on the phone/);
    expect(() => statSync(credentialsFile(xdg))).toThrow();
  });

  it("refreshes the access token before it expires (rotating the refresh token), and logout revokes it", async () => {
    const xdg = tempDir();
    expect((await login(xdg)).code).toBe(0);
    const before = readCreds(xdg);
    // Pretend the access token is about to expire.
    writeFileSync(credentialsFile(xdg), JSON.stringify({ ...before, expires_at: Date.now() + 30_000 }), { mode: 0o600 });
    const whoami = await runCli(["whoami", "--json"], { xdg });
    expect(whoami.code, whoami.stderr).toBe(0);
    const after = readCreds(xdg);
    expect(after.refresh_token).not.toBe(before.refresh_token);
    expect(after.access_token).not.toBe(before.access_token);
    expect(after.expires_at).toBeGreaterThan(Date.now() + 10 * 60_000);
    expect(statSync(credentialsFile(xdg)).mode & 0o777).toBe(0o600);

    const logout = await runCli(["logout"], { xdg });
    expect(logout.code, logout.stderr).toBe(0);
    expect(logout.stdout).toContain(`Signed out of ${stack.edgeUrl}`);
    expect(() => statSync(credentialsFile(xdg))).toThrow();
    // The refresh token is dead at the edge (logout revoked it through RFC 7009's endpoint).
    const res = await fetch(`${stack.edgeUrl}/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: after.refresh_token }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe("invalid_grant");
    // And the CLI says so.
    const again = await runCli(["whoami", "--url", stack.edgeUrl], { xdg });
    expect(again.code).toBe(4);
  });

  it("devices revoke signs a device out; its stored credentials stop working", async () => {
    const xdg = tempDir();
    expect((await login(xdg)).code).toBe(0);
    const { device_id } = readCreds(xdg);
    const token = await stack.mintToken("owner@example.com");
    const revoke = await runCli(["devices", "revoke", device_id], { env: { OUTPOST_URL: stack.edgeUrl, OUTPOST_TOKEN: token } });
    expect(revoke.code, revoke.stderr).toBe(0);
    expect(revoke.stdout).toContain(`Revoked ${device_id}`);
    const whoami = await runCli(["whoami"], { xdg });
    expect(whoami.code).toBe(4);
    oneLineError(whoami);
    const unknown = await runCli(["devices", "revoke", "dev_doesnotexist"], { env: { OUTPOST_URL: stack.edgeUrl, OUTPOST_TOKEN: token } });
    expect(unknown.code).toBe(1);
    expect(oneLineError(unknown)).toMatch(/No such device/);
  });
});

describe("headless use and precedence", () => {
  it("OUTPOST_URL + OUTPOST_TOKEN need no credentials file", async () => {
    const token = await stack.mintToken("member@example.com");
    const result = await runCli(["whoami", "--json"], { env: { OUTPOST_URL: stack.edgeUrl, OUTPOST_TOKEN: token } });
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ email: "member@example.com", role: "member", tokenSource: "env" });
    expect(result.stdout).not.toContain(token);
  });

  it("--url wins over OUTPOST_URL", async () => {
    const token = await stack.mintToken("owner@example.com");
    const port = await closedPort();
    const result = await runCli(["whoami", "--json", "--url", stack.edgeUrl], { env: { OUTPOST_URL: `http://127.0.0.1:${port}`, OUTPOST_TOKEN: token } });
    expect(result.code, result.stderr).toBe(0);
  });

  it("stored credentials are never sent to another edge", async () => {
    const xdg = tempDir();
    const port = await closedPort();
    const other = `http://127.0.0.1:${port}`;
    writeFileSync(join(xdg, "placeholder"), "");
    const { mkdirSync } = await import("node:fs");
    mkdirSync(join(xdg, "outpost"), { recursive: true, mode: 0o700 });
    writeFileSync(
      credentialsFile(xdg),
      JSON.stringify({ version: 1, url: stack.edgeUrl, provider: "outpost", access_token: "a.b.c", refresh_token: "opr_x", expires_at: Date.now() + 600_000 }),
      { mode: 0o600 },
    );
    const result = await runCli(["whoami", "--url", other], { xdg });
    expect(result.code).toBe(4);
    expect(oneLineError(result)).toContain(`not signed in to ${other}`);
  });

  it("an invalid OUTPOST_TOKEN is an authentication error (exit 4)", async () => {
    const result = await runCli(["whoami"], { env: { OUTPOST_URL: stack.edgeUrl, OUTPOST_TOKEN: "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.AAAA" } });
    expect(result.code).toBe(4);
    expect(oneLineError(result)).toMatch(/invalid or expired.*\(Run `outpost login`/);
  });
});
