// Smoke: a minted access token authenticates /auth/me; the device flow issues tokens end to end.
import { describe, expect, it } from "vitest";
import { bearer, call, errorOf, mint } from "./helpers.ts";

describe("smoke", () => {
  it("/auth/me with a valid token", async () => {
    const res = await call("/auth/me", bearer(await mint({ sid: undefined })));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ email: "owner@example.com", role: "owner" });
  });

  it("/auth/me without a token", async () => {
    const res = await call("/auth/me");
    expect(res.status).toBe(401);
    expect((await errorOf(res)).code).toBe("AUTH_REQUIRED");
  });

  it("device flow", async () => {
    const code = await call("/auth/device/code", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ client_id: "outpost-cli", hostname: "laptop", platform: "linux", arch: "x64" }),
    });
    expect(code.status).toBe(200);
    const dc = await code.json<{ device_code: string; user_code: string }>();
    const poll = () =>
      call("/auth/device/token", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          grant_type: "urn:ietf:params:oauth:grant-type:device_code",
          device_code: dc.device_code,
          client_id: "outpost-cli",
        }).toString(),
      });
    const p1 = await poll();
    expect(p1.status).toBe(400);
    expect(await p1.json()).toMatchObject({ error: "authorization_pending" });
    const owner = await mint({});
    const approve = await call("/auth/device/approve", {
      method: "POST",
      headers: { authorization: `Bearer ${owner}`, origin: "https://outpost.example.com", "content-type": "application/json" },
      body: JSON.stringify({ user_code: dc.user_code.toLowerCase(), decision: "approve" }),
    });
    expect(approve.status).toBe(200);
    const p2 = await poll();
    expect(await p2.json()).toMatchObject({ error: "slow_down", interval: 10 });
  });
});
