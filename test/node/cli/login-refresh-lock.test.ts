// Two real outpost processes refreshing at once: one refresh reaches the edge and both use its result, also when they
// find the credentials lock abandoned by a process that died holding it. Refreshes are counted by a proxy in front.
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, unlinkSync, utimesSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack, type Stack } from "../../support/stack.ts";
import { cliEntry, decideLogin, runCli, startCli, tempDir, type CliResult } from "./helpers.ts";

let stack: Stack;
let proxy: http.Server;
let proxyUrl: string;
let refreshes = 0;

/** Forwards to the edge and counts refresh grants (the CLI's only way to rotate its refresh token). */
async function countingProxy(target: string): Promise<void> {
  proxy = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks);
      if (new URLSearchParams(body.toString()).get("grant_type") === "refresh_token") refreshes++;
      const headers = Object.fromEntries(Object.entries(req.headers).filter((e): e is [string, string] => typeof e[1] === "string" && e[0] !== "host"));
      const upstream = await fetch(`${target}${req.url}`, { method: req.method, headers, body: body.length ? body : undefined });
      res.writeHead(upstream.status, Object.fromEntries(upstream.headers));
      res.end(Buffer.from(await upstream.arrayBuffer()));
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  [stack] = await Promise.all([startStack(), cliEntry()]);
  await countingProxy(stack.edgeUrl);
}, 90_000);

afterAll(async () => {
  await new Promise((resolve) => proxy?.close(resolve));
  await stack?.stop();
});

interface Stored {
  access_token: string;
  refresh_token: string;
  expires_at: number;
  device_id: string;
}

const credentialsFile = (xdg: string) => join(xdg, "outpost", "credentials.json");
const lockFile = (xdg: string) => `${credentialsFile(xdg)}.lock`;
const readCreds = (xdg: string) => JSON.parse(readFileSync(credentialsFile(xdg), "utf8")) as Stored;

/** Signs in through the proxy, then makes the stored access token due for a refresh (less than 2 minutes left). */
async function signedInDueForRefresh(): Promise<{ xdg: string; before: Stored }> {
  const xdg = tempDir();
  const cli = await startCli(["login", "--url", proxyUrl], { xdg });
  const [, code] = await cli.waitFor(/code: ([B-Z]{4}-[B-Z]{4})/);
  await decideLogin(stack, code!, "approve");
  const done = await cli.done;
  expect(done.code, done.stderr).toBe(0);
  const before = readCreds(xdg);
  writeFileSync(credentialsFile(xdg), JSON.stringify({ ...JSON.parse(readFileSync(credentialsFile(xdg), "utf8")), expires_at: Date.now() + 30_000 }), {
    mode: 0o600,
  });
  return { xdg, before };
}

/** Two `outpost whoami --json` started together against the same credentials. */
async function twoAtOnce(xdg: string): Promise<[CliResult, CliResult]> {
  const [a, b] = await Promise.all([startCli(["whoami", "--json"], { xdg }), startCli(["whoami", "--json"], { xdg })]);
  return Promise.all([a.done, b.done]);
}

/** Both succeeded as the same device, exactly one refresh reached the edge, and the session goes on working. */
async function expectOneSharedRefresh(xdg: string, before: Stored, results: CliResult[], refreshesBefore: number): Promise<void> {
  for (const r of results) {
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ deviceId: before.device_id, tokenSource: "file" });
  }
  expect(refreshes - refreshesBefore).toBe(1);
  const after = readCreds(xdg);
  expect(after.refresh_token).not.toBe(before.refresh_token);
  expect(after.expires_at).toBeGreaterThan(Date.now() + 10 * 60_000);
  // The lock and any takeover marker are gone.
  expect(readdirSync(join(xdg, "outpost")).sort()).toEqual(["credentials.json"]);
  // The device was not revoked as a reuse: the stored refresh token still rotates.
  const again = await runCli(["whoami", "--json"], { xdg });
  expect(again.code, again.stderr).toBe(0);
}

/** A pid that belonged to a process of this machine that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await new Promise((resolve) => child.once("exit", resolve));
  return child.pid!;
}

describe("the credentials lock", () => {
  it("two processes refreshing at once: one refresh, both use its result", { timeout: 60_000 }, async () => {
    const { xdg, before } = await signedInDueForRefresh();
    const counted = refreshes;
    await expectOneSharedRefresh(xdg, before, await twoAtOnce(xdg), counted);
  });

  it("a lock left by a process that died is taken over by exactly one of two waiting processes", { timeout: 60_000 }, async () => {
    const { xdg, before } = await signedInDueForRefresh();
    writeFileSync(lockFile(xdg), JSON.stringify({ token: "died-holding-it", pid: await deadPid(), host: os.hostname() }), { mode: 0o600 });
    const counted = refreshes;
    await expectOneSharedRefresh(xdg, before, await twoAtOnce(xdg), counted);
  });

  it("an empty lock (an older outpost) untouched for a minute is taken over by exactly one", { timeout: 60_000 }, async () => {
    const { xdg, before } = await signedInDueForRefresh();
    writeFileSync(lockFile(xdg), "", { mode: 0o600 });
    const old = new Date(Date.now() - 60_000);
    utimesSync(lockFile(xdg), old, old);
    const counted = refreshes;
    await expectOneSharedRefresh(xdg, before, await twoAtOnce(xdg), counted);
  });

  it("a lock whose holder is alive is waited for, not taken", { timeout: 60_000 }, async () => {
    const { xdg, before } = await signedInDueForRefresh();
    // This test process holds the lock, as a running outpost would.
    writeFileSync(lockFile(xdg), JSON.stringify({ token: "alive", pid: process.pid, host: os.hostname() }), { mode: 0o600 });
    const counted = refreshes;
    const waiting = await startCli(["whoami", "--json"], { xdg });
    await new Promise((r) => setTimeout(r, 3_000));
    expect(refreshes - counted).toBe(0);
    expect(waiting.child.exitCode).toBeNull();
    expect(existsSync(lockFile(xdg))).toBe(true);
    // Released: the waiting process goes ahead.
    unlinkSync(lockFile(xdg));
    const result = await waiting.done;
    expect(result.code, result.stderr).toBe(0);
    expect(refreshes - counted).toBe(1);
    expect(readCreds(xdg).refresh_token).not.toBe(before.refresh_token);
  });
});
