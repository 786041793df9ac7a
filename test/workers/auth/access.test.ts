// The access list API: owners grant and remove member/viewer roles at runtime; settings entries stay read only.
import { describe, expect, it } from "vitest";
import { bearer, call, expectError, jsonInit, makeEnv, callEnv, mint, tokenFor } from "./helpers.ts";

const NEW = "new.person@example.com";
const tokenOf = (email: string) => mint({ sub: `outpost:${email}`, email });
const put = async (email: string, body: unknown, as: "owner" | "member" | "viewer" = "owner") =>
  call(`/api/access/${encodeURIComponent(email)}`, jsonInit(body, { authorization: `Bearer ${await tokenFor(as)}` }, "PUT"));
const del = async (email: string, as: "owner" | "member" | "viewer" = "owner") =>
  call(`/api/access/${encodeURIComponent(email)}`, { method: "DELETE", ...bearer(await tokenFor(as)) });

describe("granting roles at runtime", () => {
  it("a granted member gets in, a changed role applies to the next request, a removed grant shuts them out", async () => {
    // One env object throughout, so the verified-token cache is in play: roles must not be cached with it.
    const env = makeEnv();
    const token = await tokenOf(NEW);
    await expectError(await callEnv(env, "/auth/me", bearer(token)), 403, "FORBIDDEN");

    const granted = await put(NEW, { role: "member" });
    expect(granted.status).toBe(200);
    expect(await granted.json()).toMatchObject({ entry: { email: NEW, role: "member", grantedBy: "owner@example.com", source: "granted" } });
    const me = await callEnv(env, "/auth/me", bearer(token));
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({ email: NEW, role: "member" });
    expect((await callEnv(env, "/auth/ws-ticket", jsonInit({ path: "/api/x" }, { authorization: `Bearer ${token}` }))).status).toBe(200);

    expect((await put(NEW, { role: "viewer" })).status).toBe(200);
    expect(await (await callEnv(env, "/auth/me", bearer(token))).json()).toMatchObject({ role: "viewer" });
    // A viewer may not write through the gateway any more.
    await expectError(await callEnv(env, "/api/echo/w", { method: "POST", body: "x", ...bearer(token) }), 403, "FORBIDDEN");

    const list = await (await call("/api/access", bearer(await tokenFor("owner")))).json<{ entries: { email: string; source: string; role: string }[] }>();
    expect(list.entries).toContainEqual(expect.objectContaining({ email: NEW, role: "viewer", source: "granted" }));
    expect(list.entries).toContainEqual(expect.objectContaining({ email: "owner@example.com", role: "owner", source: "settings" }));

    expect((await del(NEW)).status).toBe(200);
    await expectError(await callEnv(env, "/auth/me", bearer(token)), 403, "FORBIDDEN");
    await expectError(await del(NEW), 404, "NOT_FOUND");
  });

  it("an owner can mint an enrollment link for a granted email", async () => {
    const email = "granted.enroll@example.com";
    const owner = { authorization: `Bearer ${await tokenFor("owner")}` };
    expect((await call("/api/enroll-links", jsonInit({ email }, owner))).status).toBe(400);
    expect((await put(email, { role: "member" })).status).toBe(200);
    expect((await call("/api/enroll-links", jsonInit({ email }, owner))).status).toBe(200);
    expect((await del(email)).status).toBe(200);
  });
});

describe("refusals change nothing", () => {
  it("only owners read or change the list", async () => {
    await expectError(await call("/api/access", bearer(await tokenFor("member"))), 403, "FORBIDDEN");
    await expectError(await put("x@example.com", { role: "member" }, "member"), 403, "FORBIDDEN");
    await expectError(await put("x@example.com", { role: "member" }, "viewer"), 403, "FORBIDDEN");
    await expectError(await del("member@example.com", "member"), 403, "FORBIDDEN");
    await expectError(await call("/api/access"), 401, "AUTH_REQUIRED");
  });

  it.each([
    ["an owner role", "o@example.com", { role: "owner" }, 400, "BAD_REQUEST"],
    ["an unknown role", "o@example.com", { role: "admin" }, 400, "BAD_REQUEST"],
    ["no role", "o@example.com", {}, 400, "BAD_REQUEST"],
    ["a role of the wrong type", "o@example.com", { role: 1 }, 400, "BAD_REQUEST"],
    ["not an email", "not-an-email", { role: "member" }, 400, "BAD_REQUEST"],
    ["an email set in the settings", "member@example.com", { role: "viewer" }, 409, "CONFLICT"],
    ["the owner's own email", "owner@example.com", { role: "viewer" }, 409, "CONFLICT"],
  ])("PUT with %s → %i", async (_what, email, body, status, code) => {
    await expectError(await put(email, body), status, code);
    const list = await (await call("/api/access", bearer(await tokenFor("owner")))).json<{ entries: { email: string; role: string; source: string }[] }>();
    expect(list.entries.filter((e) => e.source === "granted" && e.email === email)).toEqual([]);
  });

  it("refuses a body that is not JSON, or too large", async () => {
    const owner = await tokenFor("owner");
    const url = `/api/access/${encodeURIComponent("b@example.com")}`;
    await expectError(
      await call(url, { method: "PUT", body: "{", headers: { "content-type": "application/json", authorization: `Bearer ${owner}` } }),
      400,
      "BAD_REQUEST",
    );
    await expectError(
      await call(url, {
        method: "PUT",
        body: JSON.stringify({ role: "member", pad: "x".repeat(2000) }),
        headers: { "content-type": "application/json", authorization: `Bearer ${owner}` },
      }),
      413,
      "PAYLOAD_TOO_LARGE",
    );
    await expectError(await del("member@example.com"), 409, "CONFLICT");
  });
});
