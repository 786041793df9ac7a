// An origin that hangs, dribbles or answers 530, over real sockets: 504 ORIGIN_TIMEOUT, no cut streams, 502 for 530.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { fetchWithBearer } from "../support/http-client.ts";
import { OWNER } from "../support/identity.ts";
import { startStack, type Stack } from "../support/stack.ts";
import { startUpstream, type Upstream } from "../support/upstream.ts";

interface ErrorBody {
  error: { code: string; message: string; requestId: string };
}

const TIMEOUT_MS = 500;

let upstream: Upstream;
let stack: Stack;
let token: string;
/** fetch() as the owner: the proxy only forwards authenticated requests. */
const fetchAs = fetchWithBearer(() => token);

beforeAll(async () => {
  upstream = await startUpstream();
  stack = await startStack({ originUrl: upstream.url, vars: { ORIGIN_TIMEOUT_MS: String(TIMEOUT_MS) } });
  token = await stack.mintToken(OWNER);
});

afterAll(async () => {
  await stack?.stop();
  await upstream?.close();
});

beforeEach(() => upstream.reset());

/** Internal details that must never reach a client: the origin's address and low-level error text. */
function expectNoInternals(raw: string) {
  // Request ids are random hex: drop them so a port number cannot match inside one by chance.
  const text = raw.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, "<id>");
  const { host, port } = new URL(upstream.url);
  expect(text).not.toContain(host);
  expect(text).not.toContain(port);
  expect(text).not.toMatch(/ECONNREFUSED|ETIMEDOUT|fetch failed|AbortError|origin timeout/i);
}

describe("an origin that accepts the connection but never sends headers", () => {
  it("GET gets 504 ORIGIN_TIMEOUT after about ORIGIN_TIMEOUT_MS", async () => {
    const started = performance.now();
    const res = await fetchAs(`${stack.edgeUrl}/api/hang`);
    const elapsed = performance.now() - started;
    expect(res.status).toBe(504);
    const text = await res.text();
    const body = JSON.parse(text) as ErrorBody;
    expect(body).toEqual({
      error: { code: "ORIGIN_TIMEOUT", message: expect.any(String), requestId: res.headers.get("x-request-id") },
    });
    expectNoInternals(text);
    expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    expect(elapsed).toBeLessThan(TIMEOUT_MS + 3_000);
    // It was a timeout, not a refused connection: the origin did get the request.
    expect(upstream.requests.map((r) => r.target)).toEqual(["/api/hang"]);
  });

  it("a POST with a body times out the same way", async () => {
    const res = await fetchAs(`${stack.edgeUrl}/api/hang/post`, { method: "POST", body: "payload" });
    expect(res.status).toBe(504);
    expect(((await res.json()) as ErrorBody).error.code).toBe("ORIGIN_TIMEOUT");
    expect(upstream.requests[0]).toMatchObject({ method: "POST", bodyBytes: 7 });
  });

  it("the gateway keeps serving other requests after a timeout", async () => {
    const [hung, ok] = await Promise.all([fetchAs(`${stack.edgeUrl}/api/hang/again`), fetchAs(`${stack.edgeUrl}/api/fine`)]);
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { target: string }).target).toBe("/api/fine");
    expect(hung.status).toBe(504);
    await hung.body?.cancel();
  });
});

describe("an origin that answers headers at once and then streams slowly", () => {
  it("is not cut off by the timeout: it only covers waiting for headers", async () => {
    // 3 lines 700 ms apart: each gap and the total are longer than ORIGIN_TIMEOUT_MS.
    const started = performance.now();
    const res = await fetchAs(`${stack.edgeUrl}/api/slow-body?count=3&interval=700`);
    expect(res.status).toBe(200);
    // Headers are passed on as soon as they arrive, long before the body is done.
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(await res.text()).toBe("line 1\nline 2\nline 3\n");
    expect(performance.now() - started).toBeGreaterThan(3 * 700 - 100);
  });
});

describe("origin status codes", () => {
  it("530 (tunnel has no connector) becomes 502 ORIGIN_UNREACHABLE", async () => {
    const res = await fetchAs(`${stack.edgeUrl}/api/status/530`);
    expect(res.status).toBe(502);
    const text = await res.text();
    expect((JSON.parse(text) as ErrorBody).error.code).toBe("ORIGIN_UNREACHABLE");
    expectNoInternals(text);
  });

  it.each([404, 500, 503])("an origin %i passes through unchanged", async (status) => {
    const res = await fetchAs(`${stack.edgeUrl}/api/status/${status}`);
    expect(res.status).toBe(status);
    expect(await res.text()).toBe(`status ${status} from upstream`);
    expect(res.headers.get("x-request-id")).toBeTruthy();
  });
});
