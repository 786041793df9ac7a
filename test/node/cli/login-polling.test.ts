// The device login's polling reads the edge's fields (`error`, `interval`, Retry-After), never its message text, and
// sends what RFC 8628 asks (client_id, the grant type): a fake edge that answers in RFC 6749 §5.2's shape.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ErrorBody } from "../../../shared/errors.ts";
import { CLI_CLIENT_ID, DEVICE_CODE_GRANT, type DeviceCodeResponse, type Me, type OAuthErrorBody, type TokenResponse } from "../../../shared/identity.ts";
import { PATHS } from "../../../shared/paths.ts";
import { cliEntry, runCli, tempDir } from "./helpers.ts";

let server: http.Server;
let edgeUrl: string;
/** What the fake edge answers each poll of the token endpoint with, in order; then tokens. */
let script: { status: number; body: OAuthErrorBody; retryAfter?: string; demands: number }[] = [];
let polls: URLSearchParams[] = [];
let codeRequest: URLSearchParams | null = null;
/** Like the real edge, the fake one holds the client to the wait it last demanded, and counts polls that came sooner. */
let demandedUntil = 0;
let tooEarly = 0;

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

beforeAll(async () => {
  await cliEntry();
  server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      if (req.url === PATHS.deviceCode) {
        codeRequest = new URLSearchParams(body);
        const code: DeviceCodeResponse = { device_code: "dc", user_code: "BCDF-GHJK", verification_uri: `${edgeUrl}/device`, expires_in: 600, interval: 1 };
        return send(res, 200, code);
      }
      if (req.url === PATHS.deviceToken) {
        polls.push(new URLSearchParams(body));
        // The same 100 ms allowance for timer jitter as the real edge's.
        if (Date.now() < demandedUntil - 100) tooEarly++;
        const next = script.shift();
        demandedUntil = Date.now() + (next?.demands ?? 1) * 1000;
        if (next) return send(res, next.status, next.body, next.retryAfter ? { "Retry-After": next.retryAfter } : {});
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

async function login(): Promise<void> {
  polls = [];
  tooEarly = 0;
  demandedUntil = 0;
  const result = await runCli(["login", "--url", edgeUrl], { xdg: tempDir(), timeoutMs: 40_000 });
  expect(result.code, result.stderr).toBe(0);
  expect(result.stdout).toContain("owner@example.com (owner)");
}

describe("outpost login polling", () => {
  it("names itself with client_id, and polls with the device grant and client_id", async () => {
    script = [{ status: 400, body: { error: "authorization_pending", error_description: "Waiting.", interval: 1 }, demands: 1 }];
    await login();
    expect(codeRequest?.get("client_id")).toBe(CLI_CLIENT_ID);
    expect(polls).toHaveLength(2);
    for (const fields of polls) {
      expect(Object.fromEntries(fields)).toEqual({ grant_type: DEVICE_CODE_GRANT, device_code: "dc", client_id: CLI_CLIENT_ID });
    }
    expect(tooEarly).toBe(0);
  }, 45_000);

  it("slow_down: keeps the interval the `interval` field names from then on, not what the message says", async () => {
    // The message names a wait the CLI must not take; the field says 3 s.
    script = [
      { status: 400, body: { error: "slow_down", error_description: "Polling too fast; wait 99 s between polls.", interval: 3 }, demands: 3 },
      { status: 400, body: { error: "authorization_pending", error_description: "Waiting." }, demands: 3 },
    ];
    await login();
    // Three polls (not one more slow_down), none sooner than demanded, and none waiting the message's 99 s.
    expect(polls).toHaveLength(3);
    expect(tooEarly).toBe(0);
  }, 45_000);

  it("slow_down without an `interval` field adds 5 s (RFC 8628 §3.5)", async () => {
    script = [{ status: 400, body: { error: "slow_down" }, demands: 6 }];
    await login();
    expect(polls).toHaveLength(2);
    expect(tooEarly).toBe(0);
  }, 45_000);

  it("a rate limit (429 slow_down with Retry-After) waits as Retry-After says", async () => {
    script = [{ status: 429, body: { error: "slow_down", error_description: "Too many requests." }, retryAfter: "8", demands: 8 }];
    await login();
    expect(polls).toHaveLength(2);
    expect(tooEarly).toBe(0);
  }, 45_000);
});
