// Streamed uploads through the real Worker to the real origin: bodies up to the cap arrive byte for byte.
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, upload } from "../support/http-client.ts";
import { OWNER } from "../support/identity.ts";
import { startStack, type Stack } from "../support/stack.ts";

interface Echo {
  method: string;
  path: string;
  headers: Record<string, string>;
  bodyBytes: number;
  bodySha256: string;
}

const MiB = 1024 * 1024;
const CAP = 8 * MiB;

let stack: Stack;
/** The owner's access token: the proxy only forwards authenticated uploads. */
let token: string;

beforeAll(async () => {
  stack = await startStack({ vars: { MAX_BODY_BYTES: String(CAP) } });
  token = await stack.mintToken(OWNER);
});

afterAll(async () => {
  await stack?.stop();
});

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

describe("uploads below the cap", () => {
  it("a 5 MB chunked upload with no Content-Length arrives intact", async () => {
    const body = randomBytes(5 * 1000 * 1000);
    const res = await upload(`${stack.edgeUrl}/api/echo/upload`, body, { chunkBytes: 64 * 1024, bearer: token });
    expect(res.status).toBe(200);
    expect(res.sentBytes).toBe(body.byteLength);
    const echo = JSON.parse(res.body) as Echo;
    expect(echo.bodyBytes).toBe(body.byteLength);
    expect(echo.bodySha256).toBe(sha256(body));
    // No declared length anywhere: the Worker had to count the stream against the cap itself.
    expect(echo.headers).not.toHaveProperty("content-length");
    expect(res.headers["x-request-id"]).toBe(echo.headers["x-request-id"]);
  });

  it("a 5 MB upload with a declared Content-Length arrives intact", async () => {
    const body = randomBytes(5 * 1000 * 1000);
    const res = await upload(`${stack.edgeUrl}/api/echo/upload`, body, { declareLength: true, method: "PUT", bearer: token });
    expect(res.status).toBe(200);
    const echo = JSON.parse(res.body) as Echo;
    expect(echo.method).toBe("PUT");
    expect(echo.bodyBytes).toBe(body.byteLength);
    expect(echo.bodySha256).toBe(sha256(body));
  });

  it("fetch with a ReadableStream body (duplex: half) streams 5 MB intact", async () => {
    const body = randomBytes(5 * MiB);
    let offset = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (offset >= body.byteLength) return controller.close();
        controller.enqueue(body.subarray(offset, offset + 100_000));
        offset += 100_000;
      },
    });
    const init = { method: "POST", headers: bearer(token), body: stream, duplex: "half" } as RequestInit & { duplex: "half" };
    const res = await fetch(`${stack.edgeUrl}/api/echo/stream`, init);
    expect(res.status).toBe(200);
    const echo = (await res.json()) as Echo;
    expect(echo.bodyBytes).toBe(body.byteLength);
    expect(echo.bodySha256).toBe(sha256(body));
  });

  it("a chunked body of exactly the cap is still accepted", async () => {
    const body = randomBytes(CAP);
    const res = await upload(`${stack.edgeUrl}/api/echo/at-cap`, body, { chunkBytes: 256 * 1024, bearer: token });
    expect(res.status).toBe(200);
    const echo = JSON.parse(res.body) as Echo;
    expect(echo.bodyBytes).toBe(CAP);
    expect(echo.bodySha256).toBe(sha256(body));
  });
});

describe("uploads above the cap", () => {
  it("one byte over the cap, chunked, is refused with 413 in the standard error shape", async () => {
    const res = await upload(`${stack.edgeUrl}/api/echo/over`, randomBytes(CAP + 1), { chunkBytes: 256 * 1024, bearer: token });
    expect(res.status).toBe(413);
    const body = JSON.parse(res.body) as { error: { code: string; message: string; requestId: string } };
    expect(body).toEqual({
      error: { code: "PAYLOAD_TOO_LARGE", message: expect.any(String), requestId: res.headers["x-request-id"] },
    });
    expect(res.headers["content-type"]).toMatch(/^application\/json/);
  });
});
