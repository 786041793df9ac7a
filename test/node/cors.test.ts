// CORS over real HTTP: exact-origin allowlist with credentials, Vary: Origin, and preflights answered at the edge.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { fetchWithBearer } from "../support/http-client.ts";
import { OWNER } from "../support/identity.ts";
import { startStack, type Stack } from "../support/stack.ts";
import { startUpstream, verifyAssertion, type Upstream } from "../support/upstream.ts";

const ALLOWED = "https://phone.example.com";

let upstream: Upstream;
let stack: Stack;
let token: string;
/** fetch() as the owner, so a request is refused or answered for its Origin, not for lack of credentials. */
const fetchAs = fetchWithBearer(() => token);

beforeAll(async () => {
  upstream = await startUpstream();
  stack = await startStack({ originUrl: upstream.url, vars: { CORS_ORIGINS: ALLOWED } });
  token = await stack.mintToken(OWNER);
});

afterAll(async () => {
  await stack?.stop();
  await upstream?.close();
});

beforeEach(() => upstream.reset());

const varyTokens = (res: Response) => (res.headers.get("vary") ?? "").split(",").map((t) => t.trim().toLowerCase());

describe("simple requests", () => {
  it.each([ALLOWED, "http://localhost:8787", "http://localhost:5173"])("allowed origin %s gets ACAO, credentials and Vary: Origin", async (origin) => {
    const res = await fetchAs(`${stack.edgeUrl}/api/data`, { headers: { Origin: origin } });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe(origin);
    expect(res.headers.get("access-control-allow-credentials")).toBe("true");
    expect(varyTokens(res)).toContain("origin");
    expect(res.headers.get("access-control-expose-headers")?.toLowerCase()).toContain("x-request-id");
    await res.body?.cancel();
  });

  it.each(["https://evil.example.com", "http://phone.example.com", "https://phone.example.com:8443", "https://phone.example.com.evil.example", "null"])(
    "disallowed origin %s gets no Access-Control-Allow-Origin",
    async (origin) => {
      const res = await fetchAs(`${stack.edgeUrl}/api/data`, { headers: { Origin: origin } });
      // Proxied like any other request (CORS only decides what a browser may read), but readable by no page.
      expect(res.status).toBe(200);
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
      expect(varyTokens(res)).toContain("origin");
      await res.body?.cancel();
    },
  );

  it("an error the edge produces (502) still carries CORS headers for an allowed origin, so the app can read it", async () => {
    const res = await fetchAs(`${stack.edgeUrl}/api/status/530`, { headers: { Origin: ALLOWED } });
    expect(res.status).toBe(502);
    expect(res.headers.get("access-control-allow-origin")).toBe(ALLOWED);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("ORIGIN_UNREACHABLE");
  });
});

describe("preflight", () => {
  // Browsers send preflights without credentials, so the edge answers them before authentication.
  const preflight = (origin: string, method = "PUT") =>
    fetch(`${stack.edgeUrl}/api/data/42`, {
      method: "OPTIONS",
      headers: {
        Origin: origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type, x-client-version",
      },
    });

  it("an allowed origin's preflight is answered 204 at the edge and never forwarded", async () => {
    const res = await preflight(ALLOWED);
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe(ALLOWED);
    expect(res.headers.get("access-control-allow-credentials")).toBe("true");
    const methods = (res.headers.get("access-control-allow-methods") ?? "").split(",").map((m) => m.trim());
    expect(methods).toEqual(expect.arrayContaining(["GET", "POST", "PUT", "PATCH", "DELETE"]));
    expect(res.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("content-type");
    // The web app sends its access token as a bearer header, so the preflight must allow it.
    expect(res.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("authorization");
    expect(res.headers.get("access-control-max-age")).toBe("600");
    expect(varyTokens(res)).toContain("origin");
    expect(await res.text()).toBe("");
    expect(upstream.requests).toHaveLength(0);
  });

  it("a disallowed origin's preflight gets no ACAO and is not forwarded either", async () => {
    const res = await preflight("https://evil.example.com", "DELETE");
    expect(res.status).toBeLessThan(300);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    await res.body?.cancel();
    expect(upstream.requests).toHaveLength(0);
  });

  it("the actual request after a preflight does reach the origin", async () => {
    const res = await fetchAs(`${stack.edgeUrl}/api/data/42`, {
      method: "PUT",
      headers: { Origin: ALLOWED, "content-type": "application/json", "x-client-version": "1" },
      body: "{}",
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe(ALLOWED);
    expect(upstream.requests.map((r) => `${r.method} ${r.target}`)).toEqual(["PUT /api/data/42"]);
    expect(upstream.requests[0]?.headers.origin).toBe(ALLOWED);
    expect(upstream.requests[0]?.headers).not.toHaveProperty("authorization");
    await verifyAssertion(stack.edgeUrl, upstream.requests[0]?.headers["outpost-assertion"], { method: "PUT", target: "/api/data/42" });
  });
});
