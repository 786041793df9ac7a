// outpost tunnel init | check: the written config.yml parsed as YAML, and the checks on good and broken files.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { beforeAll, describe, expect, it } from "vitest";
import { cliEntry, oneLineError, runCli, tempDir } from "./helpers.ts";

beforeAll(async () => {
  await cliEntry();
}, 60_000);

describe("tunnel init", () => {
  it("writes ./cloudflared/config.yml by default, with ingress to the origin and a 404 catch-all", async () => {
    const cwd = tempDir();
    const result = await runCli(["tunnel", "init", "--hostname", "origin.example.com"], { cwd });
    expect(result.code, result.stderr).toBe(0);
    const file = join(cwd, "cloudflared", "config.yml");
    const doc = parse(readFileSync(file, "utf8")) as Record<string, unknown>;
    expect(doc.tunnel).toBe("outpost");
    const ingress = doc.ingress as Record<string, unknown>[];
    expect(ingress).toHaveLength(2);
    expect(ingress[0]).toMatchObject({ hostname: "origin.example.com", service: "http://127.0.0.1:8788" });
    expect(ingress[0]!.originRequest).toMatchObject({
      connectTimeout: "10s",
      tcpKeepAlive: "30s",
      keepAliveTimeout: "90s",
      keepAliveConnections: 100,
    });
    expect(ingress[1]).toEqual({ service: "http_status:404" });
    // The next steps, with the names and file filled in.
    expect(result.stdout).toContain("cloudflared tunnel create outpost");
    expect(result.stdout).toContain("cloudflared tunnel route dns outpost origin.example.com");
    expect(result.stdout).toContain(`cloudflared tunnel --config ${file} run outpost`);
  });

  it("honours --origin-port, --name and --out, and refuses to overwrite without --force", async () => {
    const dir = tempDir();
    const out = join(dir, "nested", "tunnel.yml");
    const args = ["tunnel", "init", "--hostname", "laptop.example.org", "--origin-port", "9123", "--name", "my-laptop", "--out", out];
    expect((await runCli(args)).code).toBe(0);
    const doc = parse(readFileSync(out, "utf8")) as { tunnel: string; ingress: { service: string }[] };
    expect(doc.tunnel).toBe("my-laptop");
    expect(doc.ingress[0]!.service).toBe("http://127.0.0.1:9123");
    const again = await runCli(args);
    expect(again.code).toBe(2);
    expect(oneLineError(again)).toMatch(/already exists.*--force/);
    expect((await runCli([...args, "--force"])).code).toBe(0);
  });

  it("what init writes passes check", async () => {
    const dir = tempDir();
    const file = join(dir, "config.yml");
    expect((await runCli(["tunnel", "init", "--hostname", "origin.example.com", "--out", file])).code).toBe(0);
    const result = await runCli(["tunnel", "check", "--file", file, "--json"]);
    expect(result.code, result.stdout).toBe(0);
    const report = JSON.parse(result.stdout) as { ok: boolean; checks: { name: string; ok: boolean }[] };
    expect(report.ok).toBe(true);
    expect(report.checks.map((c) => c.name)).toEqual(expect.arrayContaining(["yaml", "tunnel", "catch-all", "origin rule", "websockets"]));
  });
});

describe("tunnel check", () => {
  const write = (text: string) => {
    const file = join(tempDir(), "config.yml");
    writeFileSync(file, text);
    return file;
  };

  it("fails (exit 1) on a catch-all that is not last, naming the fix on each line", async () => {
    const file = write("tunnel: t\ningress:\n  - service: http_status:404\n  - hostname: a.example.com\n    service: http://127.0.0.1:8788\n");
    const result = await runCli(["tunnel", "check", "--file", file]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^FAIL\s+catch-all .*→ End the list with/m);
    expect(result.stdout).toMatch(/^FAIL\s+rule order/m);
    expect(result.stdout).toMatch(/^FAIL\s+websockets/m);
    expect(result.stdout).toMatch(/^ok\s+origin rule/m);
    expect(oneLineError(result)).toMatch(/has problems/);
  });

  it("fails on YAML that does not parse", async () => {
    const result = await runCli(["tunnel", "check", "--file", write("tunnel: [oops\n"), "--json"]);
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as { ok: boolean; checks: { name: string; ok: boolean }[] };
    expect(report.checks).toEqual([expect.objectContaining({ name: "yaml", ok: false })]);
  });

  it("fails on a config with no local origin and a bad duration", async () => {
    const file = write(
      "tunnel: t\ningress:\n  - hostname: a.example.com\n    service: https://elsewhere.example.com\n  - service: http_status:404\noriginRequest:\n  connectTimeout: soon\n",
    );
    const result = await runCli(["tunnel", "check", "--file", file]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^FAIL\s+origin rule/m);
  });

  it("does not create anything", async () => {
    const cwd = tempDir();
    await runCli(["tunnel", "check"], { cwd });
    expect(existsSync(join(cwd, "cloudflared"))).toBe(false);
  });
});
