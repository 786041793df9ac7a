// The CLI never sends tokens in the clear over a network: a plain-http --url or OUTPOST_URL to a host that is not loopback needs --insecure.
import { beforeAll, describe, expect, it } from "vitest";
import { cliEntry, oneLineError, runCli, startCli, tempDir } from "./helpers.ts";

const USAGE = 2;
const AUTH = 4;
/** A name that never resolves (RFC 6761): nothing here reaches a network. */
const NETWORK_EDGE = "http://edge.invalid";

beforeAll(async () => {
  await cliEntry();
}, 60_000);

describe("--url and OUTPOST_URL", () => {
  it.each([
    ["--url", ["whoami", "--url", NETWORK_EDGE], {}],
    ["--url with a private address", ["devices", "--url", "http://192.168.1.20:8787"], {}],
    ["--url with [::2]", ["sessions", "--url", "http://[::2]:8787"], {}],
    ["--url on login", ["login", "--url", "http://outpost.example.com"], {}],
    ["OUTPOST_URL", ["whoami"], { OUTPOST_URL: NETWORK_EDGE }],
  ])("plain http to a network host through %s is a usage error naming --insecure (exit 2)", async (_name, args, env) => {
    const result = await runCli(args, { env });
    expect(result.code, result.stderr).toBe(USAGE);
    const where = "OUTPOST_URL" in env ? "OUTPOST_URL" : "--url";
    expect(oneLineError(result)).toMatch(new RegExp(`${where} must use https:// for a host that is not loopback .*--insecure allows plain http`));
  });

  it.each(["http://localhost:9", "http://127.0.0.1:9", "http://127.200.0.1:9", "http://[::1]:9", "https://edge.invalid"])(
    "%s passes the check (the next step, not being signed in, exits 4)",
    async (url) => {
      const result = await runCli(["whoami", "--url", url]);
      expect(result.code, result.stderr).toBe(AUTH);
      expect(oneLineError(result)).toMatch(/not signed in/);
    },
  );

  it("--insecure (or OUTPOST_INSECURE=1) allows it, for --url and for OUTPOST_URL", async () => {
    for (const [args, env] of [
      [["whoami", "--insecure", "--url", NETWORK_EDGE], {}],
      [["--insecure", "whoami"], { OUTPOST_URL: NETWORK_EDGE }],
      [["whoami", "--url", NETWORK_EDGE], { OUTPOST_INSECURE: "1" }],
      [["whoami"], { OUTPOST_URL: NETWORK_EDGE, OUTPOST_INSECURE: "true" }],
    ] as const) {
      const result = await runCli([...args], { env: { ...env } });
      expect(result.code, result.stderr).toBe(AUTH);
      expect(oneLineError(result)).toMatch(/not signed in to http:\/\/edge\.invalid/);
    }
  });

  it("a malformed OUTPOST_INSECURE is a usage error; OUTPOST_INSECURE=0 does not allow anything", async () => {
    const bad = await runCli(["whoami", "--url", NETWORK_EDGE], { env: { OUTPOST_INSECURE: "maybe" } });
    expect(bad.code, bad.stderr).toBe(USAGE);
    expect(oneLineError(bad)).toMatch(/OUTPOST_INSECURE must be 1, true, 0 or false/);
    const off = await runCli(["whoami", "--url", NETWORK_EDGE], { env: { OUTPOST_INSECURE: "0" } });
    expect(off.code, off.stderr).toBe(USAGE);
    expect(oneLineError(off)).toMatch(/--url must use https:\/\//);
  });
});

describe("outpost origin --edge", () => {
  it("refuses a plain-http edge on a network (exit 2, one line naming --edge and --insecure)", async () => {
    const result = await runCli(["origin", "--port", "0", "--data-dir", tempDir(), "--edge", NETWORK_EDGE], { timeoutMs: 15_000 });
    expect(result.code, result.stderr).toBe(USAGE);
    expect(oneLineError(result)).toMatch(/--edge must use https:\/\/ .*--insecure/);
  });

  it("starts with --insecure", async () => {
    const cli = await startCli(["origin", "--port", "0", "--data-dir", tempDir(), "--edge", NETWORK_EDGE, "--insecure"]);
    try {
      await cli.waitFor(/origin listening on http:\/\/\S+/);
      await cli.waitFor(/issuer http:\/\/edge\.invalid,/);
    } finally {
      cli.child.kill("SIGTERM");
      await cli.done;
    }
  });
});
