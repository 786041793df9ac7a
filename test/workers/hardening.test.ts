// Paths and parameters that could steer a request somewhere the edge did not check: each is refused or neutralised.
import { afterEach, describe, expect, it, vi } from "vitest";
import { mint } from "./auth/helpers.ts";
import { call, expectError, live, sentToOrigin, spyOrigin, type Echo } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

describe("the origin's host is fixed", () => {
  it("a path starting with // stays a path on the origin, never a host", async () => {
    const spy = spyOrigin();
    const origin = new URL(live().ORIGIN_URL!);
    await call("https://outpost.example.com//evil.example/api/echo/x", undefined, live({ PROXY_PATHS: "/*" }));
    const sent = new URL(sentToOrigin(spy).url);
    expect(sent.host).toBe(origin.host);
    expect(sent.pathname).toBe("//evil.example/api/echo/x");
  });
});

describe("Tomcat-style dot segments", () => {
  it.each(["/api/editor/..;/admin", "/api/..;/x", "/api/a/..;jsessionid=1/b"])("%s → 400 BAD_PATH, nothing forwarded", async (path) => {
    const spy = spyOrigin();
    await expectError(await call(path, undefined, live()), 400, "BAD_PATH");
    expect(spy).not.toHaveBeenCalled();
  });

  it("a semicolon elsewhere is still proxied", async () => {
    const res = await call("/api/echo/a;b", undefined, live());
    expect(res.status).toBe(200);
    expect((await res.json<Echo>()).path).toBe("/api/echo/a;b");
  });
});

describe("tickets never reach the origin", () => {
  it("a ?ticket= on a plain request with a bearer token is removed before forwarding", async () => {
    const res = await call("/api/echo/t?x=1&ticket=not-a-real-ticket", undefined, live());
    expect(res.status).toBe(200);
    expect((await res.json<Echo>()).query).toBe("?x=1");
  });
});

describe("the access list API", () => {
  it("a malformed percent-encoding in the email is a 400, not a 500", async () => {
    const owner = await mint({});
    const res = await call("/api/access/%E0a", {
      method: "PUT",
      headers: { authorization: `Bearer ${owner}`, "content-type": "application/json" },
      body: JSON.stringify({ role: "member" }),
    });
    expect(res.status).toBe(400);
  });
});

describe("signing out with the refresh cookie", () => {
  it("needs the web app's Origin; a token in the body does not", async () => {
    const cookie = { cookie: "__Host-outpost_refresh=opr_unknown" };
    await expectError(await call("/auth/logout", { method: "POST", headers: cookie }, {}, { anonymous: true }), 403, "FORBIDDEN_ORIGIN");
    const withOrigin = await call("/auth/logout", { method: "POST", headers: { ...cookie, origin: "https://outpost.example.com" } }, {}, { anonymous: true });
    expect(withOrigin.status).toBe(200);
    expect(await withOrigin.json()).toEqual({ revoked: false });
    const body = await call(
      "/auth/logout",
      { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ refresh_token: "opr_unknown" }) },
      {},
      { anonymous: true },
    );
    expect(body.status).toBe(200);
  });
});
