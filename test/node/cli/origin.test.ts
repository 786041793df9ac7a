// `outpost origin`: its flags reach the origin (edge, upstream, audience, data dir), and bad ones are usage errors.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, startCli, tempDir } from "./helpers.ts";

let app: ReturnType<typeof createServer>;
let appUrl = "";

beforeAll(async () => {
  // The user's app: answers every request with what identity headers the origin passed on.
  app = createServer((req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ path: req.url, user: req.headers["x-outpost-user"] ?? null }));
  });
  await new Promise<void>((resolve) => app.listen(0, "127.0.0.1", resolve));
  appUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => app.close(() => resolve())));

describe("outpost origin", () => {
  it("starts with the edge, audience, upstream and data dir it was given, and refuses unsigned requests", async () => {
    const cli = await startCli([
      "origin",
      "--port",
      "0",
      "--edge",
      "https://outpost.example.com",
      "--audience",
      "my-laptop",
      "--upstream",
      appUrl,
      "--data-dir",
      tempDir("outpost-origin-"),
    ]);
    try {
      const [, url] = await cli.waitFor(/origin listening on (http:\/\/\S+)/);
      await cli.waitFor(/forwarding to /);
      expect(cli.stdout).toContain("issuer https://outpost.example.com");
      expect(cli.stdout).toContain("audience my-laptop");
      expect(cli.stdout).toContain(`forwarding to ${appUrl}`);
      expect((await fetch(`${url}/health`)).status).toBe(200);
      // Without the edge's assertion nothing reaches the app, even from loopback.
      const res = await fetch(`${url}/api/anything`);
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("AUTH_INVALID");
    } finally {
      cli.child.kill("SIGTERM");
      await cli.done;
    }
  });

  it.each([
    [["--upstream", "not-a-url"], /--upstream/],
    [["--edge", "ftp://x"], /--edge/],
    [["--port", "70000"], /--port/],
  ])("rejects %j with a one-line usage error (exit 2)", async (args, pattern) => {
    const result = await runCli(["origin", ...args], { timeoutMs: 15_000 });
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).toMatch(pattern);
  });
});
