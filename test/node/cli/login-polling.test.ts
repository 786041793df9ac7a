// The device login's polling reads the edge's fields (error.code, Retry-After), never its message text: a fake edge.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ErrorBody } from "../../../shared/errors.ts";
import type { DeviceCodeResponse, Me, TokenResponse } from "../../../shared/identity.ts";
import { PATHS } from "../../../shared/paths.ts";
import { cliEntry, runCli, tempDir } from "./helpers.ts";

let server: http.Server;
let edgeUrl: string;
const polls: string[] = [];

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

beforeAll(async () => {
  await cliEntry();
  server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      if (req.url === PATHS.deviceCode) {
        const code: DeviceCodeResponse = { device_code: "dc", user_code: "BCDF-GHJK", verification_uri: `${edgeUrl}/device`, expires_in: 600, interval: 1 };
        return send(res, 200, code);
      }
      if (req.url === PATHS.deviceToken) {
        polls.push(req.url);
        if (polls.length === 1) {
          // The message names a wait the CLI must not take: only Retry-After counts.
          const slow: ErrorBody = { error: { code: "slow_down", message: "Polling too fast; wait 99 s between polls.", requestId: "r-1" } };
          return send(res, 400, slow, { "Retry-After": "2" });
        }
        const tokens: TokenResponse = { access_token: "a.b.c", token_type: "Bearer", expires_in: 900, refresh_token: "rt", device_id: "dev_fake" };
        return send(res, 200, tokens);
      }
      if (req.url === PATHS.me) {
        const me: Me = {
          sub: "u1",
          email: "owner@example.com",
          role: "owner",
          provider: "outpost",
          deviceId: "dev_fake",
          expiresAt: Math.floor(Date.now() / 1000) + 900,
        };
        return send(res, 200, me);
      }
      send(res, 404, { error: { code: "NOT_FOUND", message: "No such route.", requestId: "" } } satisfies ErrorBody);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  edgeUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}, 60_000);

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
});

describe("outpost login polling", () => {
  it("slow_down waits as Retry-After says, not as the message says, then signs in", async () => {
    const result = await runCli(["login", "--url", edgeUrl], { xdg: tempDir(), timeoutMs: 30_000 });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("owner@example.com (owner)");
    expect(polls).toHaveLength(2);
  }, 40_000);
});
