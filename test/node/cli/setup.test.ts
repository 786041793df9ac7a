// outpost doctor, status and enroll-link against the real stack: a healthy setup, a broken one, and a minted link the
// edge accepts.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_SIGNING_KEY } from "../../support/identity.ts";
import { startStack, type Stack } from "../../support/stack.ts";
import { cliEntry, closedPort, oneLineError, runCli, tempDir } from "./helpers.ts";

let healthy: Stack;
let broken: Stack;

beforeAll(async () => {
  const deadOrigin = `http://127.0.0.1:${await closedPort()}`;
  [healthy, broken] = await Promise.all([startStack(), startStack({ originUrl: deadOrigin }), cliEntry()]);
}, 90_000);

afterAll(async () => {
  await Promise.all([healthy?.stop(), broken?.stop()]);
});

interface DoctorReport {
  ok: boolean;
  checks: { name: string; status: "ok" | "warn" | "fail" | "skip"; detail: string; hint?: string }[];
}

describe("outpost doctor", () => {
  it("passes on a healthy setup: one line per check, exit 0", async () => {
    const token = await healthy.mintToken("owner@example.com");
    const result = await runCli(["doctor"], { env: { OUTPOST_URL: healthy.edgeUrl, OUTPOST_TOKEN: token } });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const lines = result.stdout.trimEnd().split("\n");
    expect(lines.map((l) => l.split(/\s+/)[1])).toEqual(["node", "credentials", "config", "edge", "ready", "token", "clock", "origin"]);
    for (const line of lines) expect(line).toMatch(/^(ok|skip|warn)\s/);
    expect(result.stdout).toMatch(/^ok\s+token\s+OUTPOST_TOKEN token valid for owner@example\.com \(owner\)/m);
    expect(result.stdout).toMatch(/^ok\s+origin\s+reachable through the edge/m);
    expect(result.stdout).not.toContain(token);

    const json = await runCli(["doctor", "--json"], { env: { OUTPOST_URL: healthy.edgeUrl, OUTPOST_TOKEN: token } });
    const report = JSON.parse(json.stdout) as DoctorReport;
    expect(report.ok).toBe(true);
    expect(report.checks.find((c) => c.name === "node")).toMatchObject({ status: "ok", detail: `v${process.versions.node}` });
  });

  it("fails on a broken setup (origin down, bad token): FAIL lines with fixes, exit 1", async () => {
    const result = await runCli(["doctor", "--url", broken.edgeUrl], { env: { OUTPOST_TOKEN: "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.AAAA" } });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^ok\s+edge\s/m);
    expect(result.stdout).toMatch(/^FAIL\s+token\s+.*invalid or expired.*→ OUTPOST_TOKEN is invalid or expired/m);
    expect(result.stdout).toMatch(/^FAIL\s+origin\s+not reachable through the edge: origin unreachable\s+→ Start it/m);
    expect(oneLineError(result)).toMatch(/2 checks failed/);
  });

  it("fails when the edge is unreachable, skipping what depends on it", async () => {
    const port = await closedPort();
    const result = await runCli(["doctor", "--json", "--url", `http://127.0.0.1:${port}`]);
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as DoctorReport;
    expect(report.ok).toBe(false);
    expect(report.checks.find((c) => c.name === "edge")).toMatchObject({ status: "fail", hint: expect.stringContaining("OUTPOST_URL") });
    for (const name of ["ready", "token", "clock", "origin"]) expect(report.checks.find((c) => c.name === name)?.status).toBe("skip");
  });

  it("fails without any edge URL", async () => {
    const result = await runCli(["doctor"]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^FAIL\s+config\s+no edge URL/m);
  });

  it("fails on clock skew against the edge's Date header", async () => {
    // A stand-in edge whose clock is five minutes behind ours.
    const http = await import("node:http");
    const server = http.createServer((req, res) => {
      res.setHeader("Date", new Date(Date.now() - 300_000).toUTCString());
      res.setHeader("content-type", "application/json");
      if (req.url === "/health") return res.end(JSON.stringify({ status: "ok", version: "0.0.0" }));
      if (req.url === "/ready") return res.end(JSON.stringify({ ready: true, checks: { config: { ok: true }, origin: { ok: true, latencyMs: 1 } } }));
      res.statusCode = 401;
      res.end(JSON.stringify({ error: { code: "AUTH_INVALID", message: "The access token is invalid or expired." } }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as import("node:net").AddressInfo;
      const result = await runCli(["doctor", "--json", "--url", `http://127.0.0.1:${port}`]);
      const report = JSON.parse(result.stdout) as DoctorReport;
      expect(result.code).toBe(1);
      const clock = report.checks.find((c) => c.name === "clock")!;
      expect(clock.status).toBe("fail");
      expect(clock.detail).toMatch(/^(299|300|301) s ahead of the edge$/);
      expect(clock.hint).toMatch(/NTP/);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it("flags a credentials file others can read", async () => {
    const xdg = tempDir();
    const { mkdirSync, chmodSync } = await import("node:fs");
    mkdirSync(join(xdg, "outpost"), { recursive: true });
    const file = join(xdg, "outpost", "credentials.json");
    writeFileSync(
      file,
      JSON.stringify({
        version: 1,
        url: healthy.edgeUrl,
        provider: "outpost",
        access_token: "a.b.c",
        refresh_token: "opr_x",
        expires_at: Date.now() + 600_000,
      }),
    );
    chmodSync(file, 0o644);
    const result = await runCli(["doctor"], { xdg });
    expect(result.stdout).toMatch(/^warn\s+credentials\s+.*readable by others.*chmod 600/m);
  });
});

describe("outpost status", () => {
  it("reports edge, readiness, origin and sessions as JSON", async () => {
    const token = await healthy.mintToken("viewer@example.com");
    const result = await runCli(["status", "--json"], { env: { OUTPOST_URL: healthy.edgeUrl, OUTPOST_TOKEN: token } });
    expect(result.code, result.stderr).toBe(0);
    const body = JSON.parse(result.stdout) as { edge: { status: string }; ready: { ready: boolean }; presence: { sessions: unknown[] } };
    expect(body.edge.status).toBe("ok");
    expect(body.ready.ready).toBe(true);
    expect(Array.isArray(body.presence.sessions)).toBe(true);
  });

  it("shows a down origin without failing", async () => {
    const result = await runCli(["status", "--url", broken.edgeUrl]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^origin\s+FAIL/m);
    expect(result.stdout).toMatch(/^sessions\s+unknown \(not signed in\)/m);
  });
});

describe("outpost enroll-link", () => {
  async function redeem(stack: Stack, link: string): Promise<Response> {
    const token = /#token=(.+)$/.exec(link)?.[1];
    expect(token).toBeTruthy();
    return fetch(`${stack.edgeUrl}/auth/enroll`, { method: "POST", headers: { authorization: `Bearer ${token}` } });
  }

  it("mints a link from --key-file that the edge accepts once", async () => {
    const dir = tempDir();
    const keyFile = join(dir, "signing-key.json");
    writeFileSync(keyFile, JSON.stringify(TEST_SIGNING_KEY));
    const result = await runCli(["enroll-link", "--email", "Member@Example.com", "--key-file", keyFile, "--url", "http://localhost:8787"], {
      env: { OUTPOST_SIGNING_KEY: "not a key: the flag wins" },
    });
    expect(result.code, result.stderr).toBe(0);
    const link = result.stdout.trim();
    expect(link).toMatch(/^http:\/\/localhost:8787\/enroll#token=[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(result.stderr).toContain("member@example.com");
    const first = await redeem(healthy, link);
    expect(first.status).toBe(200);
    expect(await first.json()).toMatchObject({ email: "member@example.com", role: "member" });
    expect((await redeem(healthy, link)).status).toBe(401);
  });

  it("takes the key and PUBLIC_URL from the project's .dev.vars", async () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, ".dev.vars"), `PUBLIC_URL=http://localhost:8787\nOUTPOST_SIGNING_KEY='${JSON.stringify(TEST_SIGNING_KEY)}'\n`);
    const result = await runCli(["enroll-link", "--email", "owner@example.com", "--ttl", "120"], { cwd });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain("valid for 2 min");
    expect((await redeem(healthy, result.stdout.trim())).status).toBe(200);
  });

  it("takes the key from OUTPOST_SIGNING_KEY", async () => {
    const result = await runCli(["enroll-link", "--email", "viewer@example.com", "--url", "http://localhost:8787"], {
      cwd: tempDir(),
      env: { OUTPOST_SIGNING_KEY: JSON.stringify(TEST_SIGNING_KEY) },
    });
    expect(result.code, result.stderr).toBe(0);
    expect((await redeem(healthy, result.stdout.trim())).status).toBe(200);
  });

  it("without any key: exit 3 with the three ways to give one", async () => {
    const result = await runCli(["enroll-link", "--email", "owner@example.com", "--url", "http://localhost:8787"], { cwd: tempDir() });
    expect(result.code).toBe(3);
    expect(oneLineError(result)).toMatch(/no signing key found.*--key-file.*OUTPOST_SIGNING_KEY.*\.dev\.vars/);
  });
});
