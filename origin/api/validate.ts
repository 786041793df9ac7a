// Request validation for the built-in API: JSON bodies, typed fields, list paging, and the errors (OutpostError) they raise.
import type { Context } from "hono";
import { OutpostError } from "../../shared/errors.ts";
import { canWrite } from "../../shared/identity.ts";
import { SESSION_ID_PATTERN } from "../../shared/limits.ts";
import type { OutpostIdentity } from "../verify.ts";
import type { Store } from "../store.ts";

export interface OriginVars {
  identity: OutpostIdentity;
  requestId: string;
  store: Store;
}

export type OriginContext = Context<{ Variables: OriginVars }>;

export const invalid = (message: string) => new OutpostError("VALIDATION_FAILED", message);
export const notFound = (what: string, id: string) => new OutpostError("NOT_FOUND", `No ${what} with id ${JSON.stringify(id)}.`);

/** JSON bodies above this are refused with 413. */
const MAX_JSON_BYTES = 256 * 1024;
const tooLarge = () => new OutpostError("PAYLOAD_TOO_LARGE", `The body is larger than ${MAX_JSON_BYTES} bytes.`);

/** The request's JSON object body; clear 4xx errors for the wrong type, a bad document or an oversized one. */
export async function readJson(c: OriginContext): Promise<Record<string, unknown>> {
  const type = c.req.header("content-type") ?? "";
  if (!/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(type)) {
    throw new OutpostError("UNSUPPORTED_MEDIA_TYPE", "Send the body as JSON (Content-Type: application/json).");
  }
  const declared = Number(c.req.header("content-length") ?? "0");
  if (declared > MAX_JSON_BYTES) throw tooLarge();
  const bytes = await c.req.arrayBuffer();
  if (bytes.byteLength > MAX_JSON_BYTES) throw tooLarge();
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new OutpostError("INVALID_JSON", "The body is not valid JSON.");
  }
  if (!body || typeof body !== "object" || Array.isArray(body)) throw invalid("The body must be a JSON object.");
  return body as Record<string, unknown>;
}

/** Refuses fields the endpoint does not know, so a typo is an error rather than silently ignored. */
export function onlyFields(body: Record<string, unknown>, allowed: readonly string[]): void {
  const unknown = Object.keys(body).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) throw invalid(`Unknown field${unknown.length > 1 ? "s" : ""}: ${unknown.join(", ")}. Allowed: ${allowed.join(", ")}.`);
}

interface TextRule {
  required?: boolean;
  max: number;
  /** Allow null (clears the value). */
  nullable?: boolean;
}

/** A trimmed string field: undefined when absent (and not required), null when nullable and given as null. */
export function text(body: Record<string, unknown>, field: string, rule: TextRule): string | null | undefined {
  const value = body[field];
  if (value === undefined) {
    if (rule.required) throw invalid(`${field} is required.`);
    return undefined;
  }
  if (value === null && rule.nullable) return null;
  if (typeof value !== "string") throw invalid(`${field} must be a string.`);
  const trimmed = value.trim();
  if (rule.required && trimmed.length === 0) throw invalid(`${field} must not be empty.`);
  if (trimmed.length > rule.max) throw invalid(`${field} must be at most ${rule.max} characters.`);
  return trimmed;
}

export function oneOf<T extends string>(body: Record<string, unknown>, field: string, values: readonly T[]): T | undefined {
  const value = body[field];
  if (value === undefined) return undefined;
  if (typeof value !== "string" || !values.includes(value as T)) throw invalid(`${field} must be one of: ${values.join(", ")}.`);
  return value as T;
}

/** Every id follows the edge's session-id rule: a session created here must be able to beat there under its id. */
const ID = SESSION_ID_PATTERN;

/** An id given by the client (path parameter or field): 1–128 of A-Z a-z 0-9 . _ : - */
export function checkId(value: unknown, field: string): string {
  if (typeof value !== "string" || !ID.test(value)) throw invalid(`${field} must be 1-128 characters from A-Z a-z 0-9 . _ : -`);
  return value;
}

/** ?limit (1–500, default 100) and ?offset (default 0). */
export function paging(c: OriginContext): { limit: number; offset: number } {
  const int = (name: string, fallback: number, min: number, max: number) => {
    const raw = c.req.query(name);
    if (raw === undefined || raw === "") return fallback;
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) throw invalid(`${name} must be an integer from ${min} to ${max}.`);
    return Number(raw);
  };
  return { limit: int("limit", 100, 1, 500), offset: int("offset", 0, 0, 1_000_000) };
}

/** Viewers read; writing needs owner or member (the edge checks this too). */
export function requireWriter(c: OriginContext): OutpostIdentity {
  const identity = c.get("identity");
  if (!canWrite(identity.role)) {
    throw new OutpostError("FORBIDDEN", "Your role cannot change this.");
  }
  return identity;
}
