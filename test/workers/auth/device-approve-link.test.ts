// Remote phishing (RFC 8628 §5.4): a code opened from a link is approved only with its second half typed; the phone sees where the request came from.
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { GUESS_LIMITS } from "../../../durable-objects/account/guess-limits.ts";
import { migrate } from "../../../durable-objects/account/schema.ts";
import type { LoginLookup } from "../../../shared/identity.ts";
import {
  ALLOWED_ORIGIN,
  CLIENT_ID,
  call,
  expectError,
  expectOAuthError,
  jsonInit,
  mint,
  poll,
  sha256,
  sql,
  startDeviceLogin,
  tokenFor,
  type TestEnv,
} from "./helpers.ts";

const GUESS_LIMIT_PER_USER = GUESS_LIMITS.perUser;

type Cf = { country?: string; city?: string; asn?: number; asOrganization?: string };

const lookup = (userCode: string, token: string, body: Record<string, unknown> = {}, cf?: Cf) =>
  call("/auth/device/lookup", {
    ...jsonInit({ user_code: userCode, ...body }, { authorization: `Bearer ${token}`, ...ALLOWED_ORIGIN }),
    ...(cf ? { cf } : {}),
  });

const approve = (userCode: string, token: string, extra: Record<string, unknown> = {}) =>
  call("/auth/device/approve", jsonInit({ user_code: userCode, decision: "approve", ...extra }, { authorization: `Bearer ${token}`, ...ALLOWED_ORIGIN }));

/** A device login whose code the phone has opened from its link (`#code=`). */
async function openedFromLink(token: string) {
  const dc = await startDeviceLogin();
  const res = await lookup(dc.user_code, token, { source: "link" });
  expect(res.status).toBe(200);
  expect((await res.json<LoginLookup>()).confirmation).toBe("second_half");
  return dc;
}

/** A user of their own, so the wrong-code counts of one test never reach another's. */
const someone = () => mint({ sub: `outpost:approver-${crypto.randomUUID()}`, email: "owner@example.com" });

const secondHalf = (userCode: string) => userCode.slice(5);
/** Four letters of the alphabet that are not this code's second half. */
const wrongHalf = (userCode: string) => (secondHalf(userCode) === "BBBB" ? "CCCC" : "BBBB");

describe("a code opened from a link", () => {
  it("is not approved without the confirmation: 400 CONFIRMATION_REQUIRED, and the login stays pending", async () => {
    const token = await someone();
    const dc = await openedFromLink(token);
    const text = await expectError(await approve(dc.user_code, token), 400, "CONFIRMATION_REQUIRED");
    expect(text).toContain("last four letters");
    await expectError(await approve(dc.user_code, token, { confirm: "" }), 400, "CONFIRMATION_REQUIRED");
    await expectOAuthError(await poll(dc.device_code), 400, "authorization_pending");
  });

  it("is not approved with a wrong second half: 400 CONFIRMATION_MISMATCH, pending, and counted as a wrong code", async () => {
    const token = await someone();
    const dc = await openedFromLink(token);
    const wrong = wrongHalf(dc.user_code);
    for (const confirm of [wrong, dc.user_code.slice(0, 4), "BC", "12345678", `${dc.user_code.slice(0, 4)}-${wrong}`]) {
      await expectError(await approve(dc.user_code, token, { confirm }), 400, "CONFIRMATION_MISMATCH");
    }
    await expectOAuthError(await poll(dc.device_code), 400, "authorization_pending");
    const [row] = await sql<{ status: string }>("SELECT status FROM device_codes WHERE device_code_hash = ?", await sha256(dc.device_code));
    expect(row?.status).toBe("pending");
  });

  it(`shares the cap of ${GUESS_LIMIT_PER_USER} wrong codes: past it even the right half is refused with 429`, async () => {
    const token = await someone();
    const dc = await openedFromLink(token);
    const wrong = wrongHalf(dc.user_code);
    for (let i = 0; i < GUESS_LIMIT_PER_USER; i++) await expectError(await approve(dc.user_code, token, { confirm: wrong }), 400, "CONFIRMATION_MISMATCH");
    await expectError(await approve(dc.user_code, token, { confirm: secondHalf(dc.user_code) }), 429, "RATE_LIMITED");
    await expectError(await lookup(dc.user_code, token), 429, "RATE_LIMITED");
    await expectOAuthError(await poll(dc.device_code), 400, "authorization_pending");
  });

  it("is approved with the right second half, in any case, or with the whole code", async () => {
    const token = await someone();
    const first = await openedFromLink(token);
    const res = await approve(first.user_code, token, { confirm: secondHalf(first.user_code).toLowerCase() });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toMatchObject({ status: "approved", request: { userCode: first.user_code } });
    expect((await poll(first.device_code)).status).toBe(200);

    const second = await openedFromLink(token);
    expect((await approve(second.user_code, token, { confirm: second.user_code.replace("-", " ") })).status).toBe(200);
    expect((await poll(second.device_code)).status).toBe(200);
  });

  it("stays a link code: looking it up again as typed does not lift the confirmation", async () => {
    const token = await someone();
    const dc = await openedFromLink(token);
    const again = await lookup(dc.user_code, token);
    expect((await again.json<LoginLookup>()).confirmation).toBe("second_half");
    await expectError(await approve(dc.user_code, token), 400, "CONFIRMATION_REQUIRED");
    await expectOAuthError(await poll(dc.device_code), 400, "authorization_pending");
  });

  it("can be denied without a confirmation", async () => {
    const token = await someone();
    const dc = await openedFromLink(token);
    const res = await call(
      "/auth/device/approve",
      jsonInit({ user_code: dc.user_code, decision: "deny" }, { authorization: `Bearer ${token}`, ...ALLOWED_ORIGIN }),
    );
    expect(res.status).toBe(200);
    await expectOAuthError(await poll(dc.device_code), 400, "access_denied");
  });
});

describe("a code typed by hand", () => {
  it("needs no confirmation, as before", async () => {
    const token = await someone();
    const dc = await startDeviceLogin();
    const res = await lookup(dc.user_code, token, { source: "typed" });
    expect((await res.json<LoginLookup>()).confirmation).toBe("none");
    expect((await lookup(dc.user_code, token)).status).toBe(200);
    expect((await approve(dc.user_code, token)).status).toBe(200);
    expect((await poll(dc.device_code)).status).toBe(200);
  });

  it("still checks a confirmation that is sent", async () => {
    const token = await someone();
    const dc = await startDeviceLogin();
    await expectError(await approve(dc.user_code, token, { confirm: `${dc.user_code.slice(0, 5)}${wrongHalf(dc.user_code)}` }), 400, "CONFIRMATION_MISMATCH");
    expect((await approve(dc.user_code, token, { confirm: dc.user_code })).status).toBe(200);
  });
});

describe("bad input to lookup and approve", () => {
  it.each([["phone"], ["LINK"], [""], [7], [true]])("refuses source %j with 400 and marks nothing", async (source) => {
    const token = await someone();
    const dc = await startDeviceLogin();
    await expectError(await lookup(dc.user_code, token, { source }), 400, "BAD_REQUEST");
    const [row] = await sql<{ via_link: number }>("SELECT via_link FROM device_codes WHERE device_code_hash = ?", await sha256(dc.device_code));
    expect(row?.via_link).toBe(0);
  });

  it.each([[1234], [["GHJK"]], ["x".repeat(33)], ["GH\u0000JK"]])("refuses confirm %j with 400 BAD_REQUEST and approves nothing", async (confirm) => {
    const token = await someone();
    const dc = await openedFromLink(token);
    await expectError(await approve(dc.user_code, token, { confirm }), 400, "BAD_REQUEST");
    await expectOAuthError(await poll(dc.device_code), 400, "authorization_pending");
  });
});

describe("where the request came from", () => {
  const berlin: Cf = { country: "DE", city: "Berlin", asn: 3320, asOrganization: "Deutsche Telekom AG" };

  async function startFrom(cf: Cf | undefined) {
    const res = await call("/auth/device/code", {
      ...jsonInit({ client_id: CLIENT_ID, hostname: "laptop", platform: "linux", arch: "x64" }),
      ...(cf ? { cf } : {}),
    });
    expect(res.status).toBe(200);
    return res.json<{ device_code: string; user_code: string }>();
  }

  it("stores the requesting network's country, city and AS at /auth/device/code and returns them", async () => {
    const dc = await startFrom(berlin);
    const [row] = await sql("SELECT country, city, asn, as_org, location FROM device_codes WHERE device_code_hash = ?", await sha256(dc.device_code));
    expect(row).toEqual({ country: "DE", city: "Berlin", asn: 3320, as_org: "Deutsche Telekom AG", location: "Berlin, DE" });
    const res = await lookup(dc.user_code, await tokenFor("owner"), {}, { country: "DE" });
    const body = await res.json<LoginLookup>();
    expect(body.request).toMatchObject({ country: "DE", city: "Berlin", asn: 3320, asOrganization: "Deutsche Telekom AG" });
    expect(body).toMatchObject({ approverCountry: "DE", countryMismatch: false });
  });

  it("flags a phone in another country than the request", async () => {
    const dc = await startFrom(berlin);
    const body = await (await lookup(dc.user_code, await tokenFor("owner"), { source: "link" }, { country: "US" })).json<LoginLookup>();
    expect(body).toMatchObject({ approverCountry: "US", countryMismatch: true, request: { country: "DE" } });
  });

  it.each([
    ["no cf at all on the request", undefined, { country: "US" }, false],
    ["an unknown country (XX)", { country: "XX" }, { country: "US" }, false],
    ["a phone of unknown country", berlin, undefined, false],
    ["a request from Tor (T1)", { country: "T1" }, { country: "DE" }, true],
  ] as const)("with %s the mismatch flag is %s", async (_label, from, phone, mismatch) => {
    const dc = await startFrom(from);
    const body = await (await lookup(dc.user_code, await tokenFor("owner"), {}, phone)).json<LoginLookup>();
    expect(body.countryMismatch).toBe(mismatch);
  });

  it("keeps what cf says within bounds", async () => {
    const dc = await startFrom({ country: "de", city: "C".repeat(300), asOrganization: "O".repeat(300) });
    const { request } = await (await lookup(dc.user_code, await tokenFor("owner"))).json<LoginLookup>();
    expect(request.country).toBe("DE");
    expect(request.city).toHaveLength(64);
    expect(request.asOrganization).toHaveLength(128);
    expect(request.asn).toBeNull();
  });
});

describe("accounts created before these columns", () => {
  it("get them added on start, with defaults for the rows they hold", async () => {
    const dc = await startDeviceLogin();
    const hash = await sha256(dc.device_code);
    const columns = await runInDurableObject((env as TestEnv).ACCOUNT.getByName("account"), (_instance, state) => {
      const db = state.storage.sql;
      for (const column of ["via_link", "as_org", "asn", "city", "country"]) db.exec(`ALTER TABLE device_codes DROP COLUMN ${column}`);
      migrate(db);
      migrate(db);
      return db
        .exec<{ name: string }>("SELECT name FROM pragma_table_info('device_codes')")
        .toArray()
        .map((r) => r.name);
    });
    expect(columns).toEqual(expect.arrayContaining(["country", "city", "asn", "as_org", "via_link"]));
    const [row] = await sql("SELECT country, city, asn, as_org, via_link FROM device_codes WHERE device_code_hash = ?", hash);
    expect(row).toEqual({ country: "", city: "", asn: null, as_org: "", via_link: 0 });
    expect((await approve(dc.user_code, await someone())).status).toBe(200);
  });
});
