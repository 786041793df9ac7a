// The access list: roles looked up per request, viewers read only, owner-only actions, and no owner meaning no access.
import { describe, expect, inject, it } from "vitest";
import { bearer, call, errorOf, expectError, jsonInit, tokenFor } from "./helpers.ts";

const asRole = (role: "owner" | "member" | "viewer", extra: Record<string, string> = {}) =>
  tokenFor(role).then((t) => ({ authorization: `Bearer ${t}`, ...extra }));

describe("viewers", () => {
  it("may read /auth/me and /api/devices", async () => {
    const meRes = await call("/auth/me", { headers: await asRole("viewer") });
    expect(meRes.status).toBe(200);
    expect(await meRes.json()).toMatchObject({ role: "viewer" });
    expect((await call("/api/devices", { headers: await asRole("viewer") })).status).toBe(200);
  });

  it("may not revoke a device: 403 before the device is even looked up", async () => {
    const res = await call("/api/devices/dev_doesNotExist", { method: "DELETE", headers: await asRole("viewer") });
    await expectError(res, 403, "FORBIDDEN");
  });

  it("may not mint enrollment links", async () => {
    const res = await call("/api/enroll-links", jsonInit({ email: "viewer@example.com" }, await asRole("viewer")));
    await expectError(res, 403, "FORBIDDEN");
  });

  it("may still do self-service POSTs (a WebSocket ticket for themselves)", async () => {
    const res = await call("/auth/ws-ticket", jsonInit({ path: "/api/ws/echo" }, await asRole("viewer")));
    expect(res.status).toBe(200);
  });
});

describe("owner-only actions", () => {
  it("a member may not mint enrollment links", async () => {
    const res = await call("/api/enroll-links", jsonInit({ email: "member@example.com" }, await asRole("member")));
    await expectError(res, 403, "FORBIDDEN");
  });

  it("an owner may, for a listed email only", async () => {
    const ok = await call("/api/enroll-links", jsonInit({ email: "Member@Example.com" }, await asRole("owner")));
    expect(ok.status).toBe(200);
    expect(ok.headers.get("cache-control")).toBe("no-store");
    const body = await ok.json<{ url: string; expires_in: number }>();
    expect(body.url).toMatch(/^https:\/\/outpost\.example\.com\/enroll#token=[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(body.expires_in).toBe(3600);
    await expectError(await call("/api/enroll-links", jsonInit({ email: "nobody@example.com" }, await asRole("owner"))), 400, "BAD_REQUEST");
    await expectError(await call("/api/enroll-links", jsonInit({}, await asRole("owner"))), 400, "BAD_REQUEST");
  });
});

describe("the access list", () => {
  it("refuses a valid token whose email is on no list with 403, not 401", async () => {
    const token = await tokenFor("owner", { sub: "outpost:someone@example.com", email: "someone@example.com" });
    const res = await call("/auth/me", bearer(token));
    const text = await expectError(res, 403, "FORBIDDEN");
    expect(text).not.toContain("someone@example.com");
  });

  it("is read on every request: removing an email ends its access, changing a list changes the role", async () => {
    const token = await tokenFor("member");
    expect((await call("/auth/me", bearer(token), { MEMBER_EMAILS: "" })).status).toBe(403);
    const promoted = await call("/auth/me", bearer(token), { OWNER_EMAILS: "owner@example.com, MEMBER@example.com" });
    expect(await promoted.json()).toMatchObject({ role: "owner" });
  });

  it("gives the strongest role when an email is on several lists", async () => {
    const res = await call("/auth/me", bearer(await tokenFor("viewer")), {
      OWNER_EMAILS: "owner@example.com",
      VIEWER_EMAILS: "viewer@example.com",
      MEMBER_EMAILS: "viewer@example.com",
    });
    expect(await res.json()).toMatchObject({ role: "member" });
  });

  it("refuses to run with a malformed list, naming the setting only", async () => {
    const res = await call("/auth/me", bearer(await tokenFor("owner")), { MEMBER_EMAILS: "not an email, secret-value" });
    const text = await expectError(res, 503, "CONFIG_INVALID");
    expect(text).not.toContain("secret-value");
  });
});

describe("no owner configured", () => {
  const noOwner = { OWNER_EMAILS: "" };

  it.each([
    ["GET /auth/me", "/auth/me", "GET"],
    ["GET /api/devices", "/api/devices", "GET"],
    ["DELETE /api/devices/:id", "/api/devices/dev_abc", "DELETE"],
    ["POST /api/enroll-links", "/api/enroll-links", "POST"],
  ])("refuses %s for every listed user with 403", async (_label, path, method) => {
    for (const role of ["member", "viewer"] as const) {
      const headers = await asRole(role);
      const init = method === "POST" ? jsonInit({ email: "member@example.com" }, headers) : { method, headers };
      const res = await call(path, init, noOwner);
      expect(res.status, `${role} ${method} ${path}`).toBe(403);
      expect((await errorOf(res)).code).toBe("FORBIDDEN");
    }
  });

  it("refuses requests without a token as well, before looking at credentials", async () => {
    await expectError(await call("/api/devices", {}, noOwner), 403, "FORBIDDEN");
  });

  it("is reported by /ready as an auth problem", async () => {
    const res = await call("/ready", {}, { ...noOwner, ORIGIN_URL: inject("originUrl") });
    const body = await res.json<{ ready: boolean; checks: Record<string, { ok: boolean; problems?: string[] }> }>();
    expect(body.checks.auth?.ok).toBe(false);
    expect(body.ready).toBe(false);
    expect(res.status).toBe(503);
    const withOwner = await call("/ready", {}, { ORIGIN_URL: inject("originUrl") });
    expect((await withOwner.json<{ checks: Record<string, { ok: boolean }> }>()).checks.auth?.ok).toBe(true);
  });
});
