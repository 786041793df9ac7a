// Small helpers for cac's parsed options (mri turns numeric-looking values into numbers).
import { usageError } from "./errors.ts";

export type Options = Record<string, unknown>;

/** An option's value as a string, or undefined when absent; a flag given without its value is a usage error. */
export function stringOpt(options: Options, name: string, flag = `--${name}`): string | undefined {
  const value = options[name];
  if (value === undefined || value === false) return undefined;
  if (value === true || value === "") throw usageError(`${flag} needs a value`);
  if (Array.isArray(value)) throw usageError(`${flag} was given more than once`);
  return String(value);
}

export function intOpt(options: Options, name: string, min: number, max: number, flag = `--${name}`): number | undefined {
  const raw = stringOpt(options, name, flag);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw usageError(`${flag} must be an integer from ${min} to ${max} (got ${JSON.stringify(raw)})`);
  }
  return n;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
