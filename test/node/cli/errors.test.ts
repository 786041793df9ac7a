// Bad inputs: every one is a single "outpost: error:" line with a hint and the documented exit code (docs/cli.md).
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { cliEntry, closedPort, oneLineError, runCli, tempDir } from "./helpers.ts";

const USAGE = 2;
const CONFIG = 3;
const AUTH = 4;
const UNREACHABLE = 5;

beforeAll(async () => {
  await cliEntry();
}, 60_000);

describe("usage errors exit 2", () => {
  it.each([
    ["an unknown command", ["frobnicate"], /unknown command "frobnicate"/],
    ["an unknown option", ["whoami", "--frob"], /Unknown option `--frob`/],
    ["a missing option value", ["whoami", "--url"], /value is missing/],
    ["run without a command", ["run"], /missing the command to run/],
    ["heartbeat without a session id", ["heartbeat"], /missing required args/],
    ["tunnel init without --hostname", ["tunnel", "init"], /needs --hostname/],
    ["an unknown tunnel action", ["tunnel", "dig"], /unknown tunnel action "dig"/],
    ["devices revoke without an id", ["devices", "revoke"], /missing the device id/],
    ["devices revoke with a malformed id", ["devices", "revoke", "not-a-device"], /is not a device id/],
    ["a bad --url", ["whoami", "--url", "ftp://example.com"], /--url is not a valid edge URL/],
    ["a URL with credentials", ["status", "--url", "https://user:pw@example.com"], /--url is not a valid edge URL/],
    ["a bad session id", ["run", "--session", "no spaces!", "--", "true"], /is not a valid session id/],
    ["a bad heartbeat session id", ["heartbeat", "../etc"], /is not a valid session id/],
    ["a bad --origin-port", ["tunnel", "init", "--hostname", "o.example.com", "--origin-port", "99999"], /--origin-port must be an integer/],
    ["a bad --hostname", ["tunnel", "init", "--hostname", "not a host"], /--hostname must be a DNS name/],
    ["enroll-link without --email", ["enroll-link"], /needs --email/],
  ])("%s", async (_name, args, message) => {
    const result = await runCli(args, { env: { OUTPOST_URL: "http://127.0.0.1:9", OUTPOST_TOKEN: "a.b.c" } });
    expect(result.code, result.stderr).toBe(USAGE);
    expect(oneLineError(result)).toMatch(message);
    expect(result.stderr).toMatch(/\(.+\)$/m); // a hint
  });

  it("a bad OUTPOST_URL is a usage error too", async () => {
    const result = await runCli(["whoami"], { env: { OUTPOST_URL: "not a url" } });
    expect(result.code).toBe(USAGE);
    expect(oneLineError(result)).toMatch(/OUTPOST_URL is not a valid edge URL/);
  });

  it("a run with a bad session id never starts the command", async () => {
    const dir = tempDir();
    const marker = join(dir, "started");
    const result = await runCli(["run", "--session", "bad id", "--", "touch", marker], { env: { OUTPOST_URL: "http://127.0.0.1:9", OUTPOST_TOKEN: "a.b.c" } });
    expect(result.code).toBe(USAGE);
    const { existsSync } = await import("node:fs");
    expect(existsSync(marker)).toBe(false);
  });
});

describe("configuration errors exit 3", () => {
  it("no edge URL anywhere", async () => {
    const result = await runCli(["whoami"]);
    expect(result.code).toBe(CONFIG);
    expect(oneLineError(result)).toMatch(/no edge URL is configured.*--url/);
  });

  it("a corrupt credentials file", async () => {
    const xdg = tempDir();
    mkdirSync(join(xdg, "outpost"), { recursive: true });
    writeFileSync(join(xdg, "outpost", "credentials.json"), "{not json", { mode: 0o600 });
    for (const args of [["whoami"], ["sessions", "--json"], ["run", "--", "true"]]) {
      const result = await runCli(args, { xdg });
      expect(result.code, args.join(" ")).toBe(CONFIG);
      expect(oneLineError(result)).toMatch(/credentials file .* is corrupt.*outpost login/);
    }
  });

  it("a credentials file with the wrong shape is corrupt too", async () => {
    const xdg = tempDir();
    mkdirSync(join(xdg, "outpost"), { recursive: true });
    writeFileSync(join(xdg, "outpost", "credentials.json"), JSON.stringify({ version: 1, url: "http://x" }), { mode: 0o600 });
    const result = await runCli(["whoami"], { xdg });
    expect(result.code).toBe(CONFIG);
    expect(oneLineError(result)).toMatch(/corrupt/);
  });

  it("logout --force removes a corrupt credentials file", async () => {
    const xdg = tempDir();
    mkdirSync(join(xdg, "outpost"), { recursive: true });
    writeFileSync(join(xdg, "outpost", "credentials.json"), "garbage", { mode: 0o600 });
    expect((await runCli(["logout"], { xdg })).code).toBe(CONFIG);
    const forced = await runCli(["logout", "--force"], { xdg });
    expect(forced.code).toBe(0);
    expect((await runCli(["whoami"], { xdg })).code).toBe(CONFIG); // now: no edge URL, not "corrupt"
  });

  it.skipIf(process.getuid?.() === 0)("an unreadable credentials file", async () => {
    const xdg = tempDir();
    mkdirSync(join(xdg, "outpost"), { recursive: true });
    const file = join(xdg, "outpost", "credentials.json");
    writeFileSync(file, "{}", { mode: 0o000 });
    chmodSync(file, 0o000);
    const result = await runCli(["whoami"], { xdg });
    expect(result.code).toBe(CONFIG);
    expect(oneLineError(result)).toMatch(/cannot read/);
  });

  it("an enroll-link key file that does not exist", async () => {
    const result = await runCli(["enroll-link", "--email", "owner@example.com", "--key-file", "/nonexistent/key.json", "--url", "https://outpost.example.com"]);
    expect(result.code).toBe(CONFIG);
    expect(oneLineError(result)).toMatch(/cannot read the key file \/nonexistent\/key\.json: ENOENT/);
  });

  it("an enroll-link key file that is a directory", async () => {
    const result = await runCli(["enroll-link", "--email", "owner@example.com", "--key-file", tempDir(), "--url", "https://outpost.example.com"]);
    expect(result.code).toBe(CONFIG);
    expect(oneLineError(result)).toMatch(/cannot read the key file .*EISDIR/);
  });

  it("an enroll-link key file that is not a private ES256 JWK", async () => {
    const dir = tempDir();
    const file = join(dir, "key.json");
    writeFileSync(file, JSON.stringify({ kty: "EC", crv: "P-256", x: "x", y: "y", kid: "public-only" }));
    const result = await runCli(["enroll-link", "--email", "owner@example.com", "--key-file", file, "--url", "https://outpost.example.com"]);
    expect(result.code).toBe(CONFIG);
    expect(oneLineError(result)).toMatch(/not an ES256 \(P-256\) private JWK/);
  });

  it("tunnel check on a missing file", async () => {
    const result = await runCli(["tunnel", "check", "--file", join(tempDir(), "nope.yml")]);
    expect(result.code).toBe(CONFIG);
    expect(oneLineError(result)).toMatch(/cannot read .*nope\.yml: ENOENT/);
  });
});

describe("authentication and reachability", () => {
  it("not signed in exits 4", async () => {
    const result = await runCli(["whoami", "--url", "http://127.0.0.1:9"]);
    expect(result.code).toBe(AUTH);
    expect(oneLineError(result)).toMatch(/not signed in to http:\/\/127\.0\.0\.1:9 \(Run `outpost login`/);
  });

  it("run refuses to start without credentials", async () => {
    const result = await runCli(["run", "--url", "http://127.0.0.1:9", "--", "true"]);
    expect(result.code).toBe(AUTH);
    oneLineError(result);
  });

  it("an unreachable edge exits 5 and never prints the token", async () => {
    const port = await closedPort();
    const token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2VjcmV0LXNpZ25hdHVyZQ";
    for (const args of [["whoami"], ["sessions"], ["devices"], ["status"]]) {
      const result = await runCli(args, { env: { OUTPOST_URL: `http://127.0.0.1:${port}`, OUTPOST_TOKEN: token } });
      expect(result.code, args.join(" ")).toBe(UNREACHABLE);
      expect(oneLineError(result)).toMatch(/cannot reach the edge at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
      expect(result.stdout + result.stderr).not.toContain("c2VjcmV0");
    }
  });

  it("output in a pipe has no colour codes", async () => {
    const result = await runCli(["frobnicate"]);
    expect(result.stderr).not.toMatch(/\x1b\[/);
    const help = await runCli(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).not.toMatch(/\x1b\[/);
  });
});

describe("help", () => {
  it.each(["login", "logout", "whoami", "devices", "run", "heartbeat", "sessions", "status", "tunnel", "origin", "enroll-link", "doctor"])(
    "`%s --help` shows usage and examples",
    async (command) => {
      const result = await runCli([command, "--help"]);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(`$ outpost ${command}`);
      expect(result.stdout).toMatch(/Examples:\n\s+\$ outpost/);
    },
  );
});
