// HTTP proxying through the real Worker to the real origin: request intact, forged identity headers gone, gateway headers set.
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fetchWithBearer, rawRequest } from "../support/http-client.ts";
import { OWNER } from "../support/identity.ts";
import { startStack, type Stack } from "../support/stack.ts";
import { verifyAssertion } from "../support/upstream.ts";

interface Echo {
  method: string;
  path: string;
  query: string;
  headers: Record<string, string>;
  bodyBytes: number;
  bodySha256: string;
  body: string | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let stack: Stack;
let token: string;
/** fetch() as the owner: the proxy only forwards authenticated requests. */
const fetchAs = fetchWithBearer(() => token);

beforeAll(async () => {
  stack = await startStack();
  token = await stack.mintToken(OWNER);
});

afterAll(async () => {
  await stack?.stop();
});

describe("request intact at the origin", () => {
  it.each(["POST", "PUT", "PATCH", "DELETE"])("%s keeps method, encoded path, query and body", async (method) => {
    const body = JSON.stringify({ hello: "wörld", method, n: [1, 2, 3] });
    const res = await fetchAs(`${stack.edgeUrl}/api/echo/a%20b/caf%C3%A9?q=a%20b&q=2&empty=&amp=%26`, {
      method,
      headers: { "content-type": "application/json" },
      body,
    });
    expect(res.status).toBe(200);
    const echo = (await res.json()) as Echo;
    expect(echo.method).toBe(method);
    expect(echo.path).toBe("/api/echo/a%20b/caf%C3%A9");
    expect(echo.query).toBe("?q=a%20b&q=2&empty=&amp=%26");
    expect(echo.body).toBe(body);
    expect(echo.bodyBytes).toBe(Buffer.byteLength(body));
    expect(echo.headers["content-type"]).toBe("application/json");
    // The assertion is bound to this method and to the path and query exactly as the origin received them.
    await verifyAssertion(stack.edgeUrl, echo.headers["outpost-assertion"], { method, target: echo.path + echo.query });
  });

  it("GET keeps path and query and sends no body", async () => {
    const res = await fetchAs(`${stack.edgeUrl}/api/echo/deep/er/path?x=1`);
    const echo = (await res.json()) as Echo;
    expect(echo).toMatchObject({ method: "GET", path: "/api/echo/deep/er/path", query: "?x=1", bodyBytes: 0 });
  });

  it("binary bodies arrive byte for byte", async () => {
    const bytes = randomBytes(200 * 1024);
    const res = await fetchAs(`${stack.edgeUrl}/api/echo/bin`, { method: "POST", body: bytes });
    const echo = (await res.json()) as Echo;
    expect(echo.bodyBytes).toBe(bytes.byteLength);
    expect(echo.bodySha256).toBe(createHash("sha256").update(bytes).digest("hex"));
  });

  it("the origin's status and body come back unchanged", async () => {
    const res = await fetchAs(`${stack.edgeUrl}/api/no-such-route`);
    expect(res.status).toBe(404);
    const body = (await res.json()) as { error: { code: string; requestId: string } };
    expect(body.error.code).toBe("NOT_FOUND");
    // The origin echoes the id it was given: the same one the gateway put on the response.
    expect(body.error.requestId).toBe(res.headers.get("x-request-id"));
  });
});

describe("forwarding and identity headers", () => {
  it("drops client-forged forwarding and identity headers and sets the gateway's own", async () => {
    const res = await fetchAs(`${stack.edgeUrl}/api/echo/headers`, {
      headers: {
        "X-Forwarded-For": "6.6.6.6",
        "X-Forwarded-Proto": "gopher",
        "X-Forwarded-Host": "evil.example.com",
        "X-Real-IP": "6.6.6.6",
        Forwarded: "for=6.6.6.6;proto=https",
        "X-Outpost-User": "admin@example.com",
        "Outpost-Assertion": "forged.jwt.value",
        "X-Keep-Me": "yes",
      },
    });
    expect(res.status).toBe(200);
    const { headers } = (await res.json()) as Echo;
    for (const name of ["x-real-ip", "forwarded", "x-outpost-user", "authorization"]) {
      expect(headers, name).not.toHaveProperty(name);
    }
    // The forged assertion is gone; the one that arrived is the gateway's own, for this request and this user.
    expect(headers["outpost-assertion"]).not.toContain("forged");
    const claims = await verifyAssertion(stack.edgeUrl, headers["outpost-assertion"], { method: "GET", target: "/api/echo/headers" });
    expect(claims).toMatchObject({ email: OWNER, role: "owner" });
    expect(headers["x-forwarded-for"]).toBe("127.0.0.1");
    expect(headers["x-forwarded-proto"]).toBe("http");
    expect(headers["x-forwarded-host"]).toBe("localhost:8787");
    expect(headers["x-keep-me"]).toBe("yes");
    expect(headers["x-request-id"]).toMatch(UUID);
    expect(res.headers.get("x-request-id")).toBe(headers["x-request-id"]);
  });

  it("keeps a well-formed client request id end to end and replaces a malformed one", async () => {
    const kept = await fetchAs(`${stack.edgeUrl}/api/echo/id`, { headers: { "X-Request-Id": "client-trace.42" } });
    expect(kept.headers.get("x-request-id")).toBe("client-trace.42");
    expect(((await kept.json()) as Echo).headers["x-request-id"]).toBe("client-trace.42");

    const replaced = await fetchAs(`${stack.edgeUrl}/api/echo/id`, { headers: { "X-Request-Id": "bad id; drop table" } });
    const id = replaced.headers.get("x-request-id");
    expect(id).toMatch(UUID);
    expect(((await replaced.json()) as Echo).headers["x-request-id"]).toBe(id);
  });

  it("a Connection header cannot make the gateway drop the forwarding headers it sets itself", async () => {
    const res = await rawRequest(stack.edgeUrl, {
      bearer: token,
      method: "GET",
      target: "/api/echo/conn",
      headers: { Connection: "close, X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host, X-Request-Id" },
    });
    expect(res.status).toBe(200);
    const { headers } = JSON.parse(res.body) as Echo;
    expect(headers["x-forwarded-for"]).toBe("127.0.0.1");
    expect(headers["x-forwarded-proto"]).toBe("http");
    expect(headers["x-forwarded-host"]).toBe("localhost:8787");
    expect(headers["x-request-id"]).toBe(res.headers["x-request-id"]);
  });

  // KNOWN GAP (not fixable in the Worker): workerd's HTTP server consumes the client's Connection header, so the
  // Worker never sees it (request.headers has no "connection") and forwardRequestHeaders() cannot drop the headers
  // it names. RFC 9110 §7.6.1 says an intermediary must remove them; here X-Debug-Token reaches the origin.
  // Remove `.fails` once the runtime (or a gateway-side denylist) removes Connection-nominated headers.
  it.fails("drops a header the client named in Connection", async () => {
    const res = await rawRequest(stack.edgeUrl, {
      bearer: token,
      method: "GET",
      target: "/api/echo/conn",
      headers: { Connection: "close, X-Debug-Token", "X-Debug-Token": "secret" },
    });
    expect(res.status).toBe(200);
    expect((JSON.parse(res.body) as Echo).headers).not.toHaveProperty("x-debug-token");
  });
});
