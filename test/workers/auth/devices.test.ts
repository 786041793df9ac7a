// Signed-in devices: who sees which in GET /api/devices, who may revoke which, and revocation ending access at once.
import { describe, expect, it } from "vitest";
import { bearer, call, callEnv, deviceLogin, expectError, expectInvalid, expectOAuthError, makeEnv, mint, refresh, tokenFor } from "./helpers.ts";

interface Device {
  id: string;
  sub: string;
  email: string;
  kind: string;
  name: string;
  hostname: string;
  platform: string;
  arch: string;
  createdAt: number;
  lastSeenAt: number;
  revokedAt: number | null;
}

const list = async (token: string) => {
  const res = await call("/api/devices", bearer(token));
  expect(res.status).toBe(200);
  return res.json<{ devices: Device[]; current: string | null }>();
};
const revoke = (id: string, token: string, env = makeEnv()) => callEnv(env, `/api/devices/${id}`, { method: "DELETE", ...bearer(token) });

describe("GET /api/devices", () => {
  it("lists a device with its name, hostname, platform and times; current is the caller's device", async () => {
    const before = Date.now();
    const tokens = await deviceLogin("member", { client_name: "outpost-cli", hostname: "build-host", platform: "linux", arch: "x64" });
    const { devices, current } = await list(tokens.access_token);
    expect(current).toBe(tokens.device_id);
    const device = devices.find((d) => d.id === tokens.device_id)!;
    expect(device).toMatchObject({
      kind: "cli",
      name: "outpost-cli",
      hostname: "build-host",
      platform: "linux",
      arch: "x64",
      email: "member@example.com",
      revokedAt: null,
    });
    expect(device.createdAt).toBeGreaterThanOrEqual(before);
    expect(device.lastSeenAt).toBeGreaterThanOrEqual(device.createdAt);
    expect(JSON.stringify(devices)).not.toContain(tokens.refresh_token);
  });

  it("shows owners every device and everyone else only their own", async () => {
    const mine = await deviceLogin("member");
    const theirs = await deviceLogin("viewer");
    const memberView = (await list(mine.access_token)).devices;
    expect(memberView.some((d) => d.id === mine.device_id)).toBe(true);
    expect(memberView.every((d) => d.email === "member@example.com")).toBe(true);
    const ownerView = (await list(await tokenFor("owner"))).devices.map((d) => d.id);
    expect(ownerView).toEqual(expect.arrayContaining([mine.device_id, theirs.device_id]));
  });

  it("updates lastSeenAt when the device refreshes", async () => {
    const tokens = await deviceLogin("member");
    const before = (await list(tokens.access_token)).devices.find((d) => d.id === tokens.device_id)!;
    await new Promise((r) => setTimeout(r, 20));
    expect((await refresh(tokens.refresh_token)).status).toBe(200);
    const after = (await list(tokens.access_token)).devices.find((d) => d.id === tokens.device_id)!;
    expect(after.lastSeenAt).toBeGreaterThan(before.lastSeenAt);
  });

  it("needs a token", async () => {
    await expectError(await call("/api/devices"), 401, "AUTH_REQUIRED");
  });
});

describe("DELETE /api/devices/:id", () => {
  it("lets an owner revoke any device; its access token is refused on the very next request", async () => {
    const victim = await deviceLogin("member");
    const env = makeEnv();
    expect((await callEnv(env, "/auth/me", bearer(victim.access_token))).status).toBe(200);
    const res = await revoke(victim.device_id, await tokenFor("owner"), env);
    expect(res.status).toBe(200);
    const { device } = await res.json<{ device: Device }>();
    expect(device.id).toBe(victim.device_id);
    expect(device.revokedAt).not.toBeNull();
    // Same config (which had the device cached as active) and a fresh one both refuse at once.
    const log = await expectInvalid(await callEnv(env, "/auth/me", bearer(victim.access_token)), victim.access_token);
    expect(log.detail).toBe("device revoked");
    await expectInvalid(await call("/auth/me", bearer(victim.access_token)), victim.access_token);
    await expectOAuthError(await refresh(victim.refresh_token), 400, "invalid_grant");
  });

  it("lets a member revoke their own device but not another user's", async () => {
    const own = await deviceLogin("member");
    const other = await deviceLogin("owner");
    const member = await tokenFor("member");
    await expectError(await revoke(other.device_id, member), 403, "FORBIDDEN");
    expect((await call("/auth/me", bearer(other.access_token))).status).toBe(200);
    expect((await revoke(own.device_id, member)).status).toBe(200);
  });

  it("a member cannot revoke another user's device by forging a sub in a listed account", async () => {
    const other = await deviceLogin("owner");
    const forged = await mint({ sub: "outpost:member@example.com", email: "member@example.com" }, { kid: "nope" });
    expect((await revoke(other.device_id, forged)).status).toBe(401);
  });

  it.each(["abc", "dev_", `dev_${"a".repeat(65)}`, "dev_a.b", "dev_a~b", "DEV_abc", "dev_a'--"])("refuses the id %j with 400", async (id) => {
    await expectError(await revoke(id, await tokenFor("owner")), 400, "BAD_REQUEST");
  });

  it.each(["dev_%2e%2e", "dev_a%00", "dev_a%2Fb"])("refuses the encoded id %j with 400 (the path guard or the route)", async (id) => {
    expect((await revoke(id, await tokenFor("owner"))).status).toBe(400);
  });

  it("answers 404 for an unknown device", async () => {
    await expectError(await revoke("dev_doesNotExist123", await tokenFor("owner")), 404, "NOT_FOUND");
  });

  it("a device revoked with its own token locks itself out", async () => {
    const tokens = await deviceLogin("member");
    expect((await revoke(tokens.device_id, tokens.access_token)).status).toBe(200);
    await expectInvalid(await call("/api/devices", bearer(tokens.access_token)), tokens.access_token);
  });

  it("refuses an access token whose device does not exist", async () => {
    const token = await mint({ sid: "dev_neverExisted" });
    expect((await expectInvalid(await call("/auth/me", bearer(token)), token)).detail).toBe("device revoked");
  });
});
