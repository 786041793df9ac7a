// Reads small request bodies (JSON or form) with a hard size cap; shared/fields.ts checks the fields.
import type { Context } from "hono";
import { OutpostError } from "../shared/errors.ts";

/** Reads at most `maxBytes`; a larger body is refused without reading the rest. */
async function readCapped(c: Context, maxBytes: number): Promise<string> {
  const declared = c.req.header("content-length");
  if (declared !== undefined && Number(declared) > maxBytes) throw tooLarge(maxBytes);
  const body = c.req.raw.body;
  if (!body) return "";
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw tooLarge(maxBytes);
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return new TextDecoder().decode(all);
}

function tooLarge(maxBytes: number): OutpostError {
  return new OutpostError("PAYLOAD_TOO_LARGE", `The request body is larger than ${maxBytes} bytes.`);
}

function contentType(c: Context): string {
  return (c.req.header("content-type") ?? "").split(";", 1)[0]?.trim().toLowerCase() ?? "";
}

/**
 * The parameters of an OAuth request: a form body (application/x-www-form-urlencoded, the standard) or, as an
 * extension, a JSON object of strings. RFC 6749 §3.1: a parameter without a value counts as absent, and none may
 * appear twice. An empty body is no parameters.
 */
export async function readOAuthParams(c: Context, maxBytes: number): Promise<Record<string, string>> {
  const text = await readCapped(c, maxBytes);
  const type = contentType(c);
  const params: Record<string, string> = {};
  if (type === "application/x-www-form-urlencoded") {
    for (const [name, value] of new URLSearchParams(text)) {
      if (value === "") continue;
      if (Object.hasOwn(params, name)) throw new OutpostError("BAD_REQUEST", `The parameter ${name} appears more than once.`);
      params[name] = value;
    }
    return params;
  }
  if (text.trim() === "") return params;
  if (type !== "application/json") {
    throw new OutpostError("UNSUPPORTED_MEDIA_TYPE", "Send the parameters as application/x-www-form-urlencoded.");
  }
  const parsed = parseJsonObject(text);
  for (const [name, value] of Object.entries(parsed)) {
    if (value === null || value === "") continue;
    if (typeof value !== "string") throw new OutpostError("BAD_REQUEST", `The parameter ${name} must be a string.`);
    params[name] = value;
  }
  return params;
}

function parseJsonObject(text: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new OutpostError("BAD_REQUEST", "The body is not valid JSON.");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new OutpostError("BAD_REQUEST", "The body must be a JSON object.");
  }
  return parsed as Record<string, unknown>;
}

/** A JSON object body, or a form body for OAuth-style endpoints; anything else is a 400. */
export async function readFields(c: Context, maxBytes: number, options: { form?: boolean } = {}): Promise<Record<string, unknown>> {
  const text = await readCapped(c, maxBytes);
  const type = contentType(c);
  if (options.form && type === "application/x-www-form-urlencoded") {
    return Object.fromEntries(new URLSearchParams(text));
  }
  if (text.trim() === "") return {};
  if (type !== "application/json") {
    throw new OutpostError("UNSUPPORTED_MEDIA_TYPE", "Send the body as application/json.");
  }
  return parseJsonObject(text);
}
