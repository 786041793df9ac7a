// Shared helpers for the Worker tests: call the Worker with overridden settings, watch what reaches the origin.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { expect, inject, vi } from "vitest";
import worker from "../../worker/index.ts";
import { mint } from "./auth/helpers.ts";

const BASE = "https://outpost.example.com";

export interface ErrorJson {
  error: { code: string; message: string; requestId: string };
}

export interface Echo {
  method: string;
  path: string;
  query: string;
  headers: Record<string, string>;
  bodyBytes: number;
  bodySha256: string;
  body: string | null;
}

let ownerToken: Promise<string> | undefined;

/**
 * Calls the Worker directly, signed in as the owner unless the request carries its own Authorization or
 * `anonymous` is set; `overrides` replace the test bindings from vitest.config.ts.
 */
export async function call(
  target: string | Request,
  init?: RequestInit,
  overrides: Partial<Env> = {},
  options: { anonymous?: boolean } = {},
): Promise<Response> {
  const req = typeof target === "string" ? new Request(target.startsWith("http") ? target : BASE + target, init) : target;
  if (!options.anonymous && !req.headers.has("authorization")) {
    ownerToken ??= mint({}, { ttl: 900 });
    req.headers.set("authorization", `Bearer ${await ownerToken}`);
  }
  const ctx = createExecutionContext();
  const res = await worker.fetch(req, { ...env, ...overrides }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

/** Bindings that point the Worker at the real origin started by global-setup.ts. */
export function live(overrides: Partial<Env> = {}): Partial<Env> {
  return { ORIGIN_URL: inject("originUrl"), ...overrides };
}

/** Spies on the global fetch the proxy uses; without a mock implementation it still calls the real origin. */
export function spyOrigin() {
  return vi.spyOn(globalThis, "fetch");
}

/** What the Worker handed to fetch for its n-th origin call. */
export function sentToOrigin(spy: ReturnType<typeof spyOrigin>, n = 0) {
  const args = spy.mock.calls[n];
  if (!args) throw new Error(`fetch was called ${spy.mock.calls.length} times, not ${n + 1}`);
  const [input, init] = args;
  return {
    url: String(input instanceof Request ? input.url : input),
    method: init?.method ?? "GET",
    headers: new Headers(init?.headers),
    body: (init?.body ?? null) as ReadableStream<Uint8Array> | null,
  };
}

/** Asserts the standard error shape and that its requestId matches the X-Request-Id header. */
export async function expectError(res: Response, status: number, code: string): Promise<ErrorJson> {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  const body = await res.json<ErrorJson>();
  expect(Object.keys(body)).toEqual(["error"]);
  expect(Object.keys(body.error).sort()).toEqual(["code", "message", "requestId"]);
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe("string");
  expect(body.error.message.length).toBeGreaterThan(0);
  expect(body.error.requestId).not.toBe("");
  expect(body.error.requestId).toBe(res.headers.get("x-request-id"));
  return body;
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** A body stream without a declared length, delivered in the given chunks. */
export function chunkedBody(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const chunk = chunks[i++];
      if (chunk) controller.enqueue(chunk);
      else controller.close();
    },
  });
}
