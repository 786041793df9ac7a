// Checks on the fields of a JSON object sent to the edge (request bodies and socket messages), without a schema library.
import { OutpostError } from "./errors.ts";

/** An optional string field: trimmed, at most `max` characters, printable only; absent gives the fallback. */
export function stringField(fields: Record<string, unknown>, name: string, max: number, fallback = ""): string {
  const value = fields[name];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "string" || value.length > max || /[\u0000-\u001f\u007f]/.test(value)) {
    throw new OutpostError("BAD_REQUEST", `"${name}" must be a string of at most ${max} printable characters.`);
  }
  return value.trim();
}

export function requiredString(fields: Record<string, unknown>, name: string, max: number): string {
  const value = stringField(fields, name, max);
  if (!value) throw new OutpostError("BAD_REQUEST", `"${name}" is required.`);
  return value;
}
