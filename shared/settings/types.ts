// How a setting is declared (type, default, rule, prose) and read from an environment; problems name settings, never values.
import type { JWK } from "jose";

/** One unusable setting: its name and why, never its value (values can name internal hosts or be secrets). */
export interface ConfigProblem {
  setting: string;
  reason: string;
}

type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

/** How a trimmed string becomes a value, and the rule as docs/configuration.md states it. */
export interface SettingType<T> {
  parse(raw: string): Parsed<T>;
  /** The valid values, in Markdown. */
  rule: string;
}

/** What `<generate:KIND>` in .dev.vars.example can ask scripts/dev-vars.ts for. */
export const GENERATOR_KINDS = ["secret", "uuid", "es256-private-jwk"] as const;
export type GeneratorKind = (typeof GENERATOR_KINDS)[number];

export interface Setting<T> {
  name: string;
  type: SettingType<T>;
  /** What it means, in Markdown: the docs' "Meaning" and the comment in .dev.vars.example. */
  description: string;
  /** Further paragraphs for the docs only. */
  details?: string;
  /** The raw value an empty or missing setting stands for ("" for an empty list). */
  default?: string;
  /** How the docs show the default when it is not a plain value. */
  defaultText?: string;
  required?: boolean;
  /** When it is required only sometimes: the docs' "Required" cell. */
  requiredWhen?: string;
  secret?: boolean;
  /** Generated per machine by `npm start` instead of an example value. */
  generate?: GeneratorKind;
  /** The value in .dev.vars.example when it is not the default. */
  example?: string;
  /** Replaces the type's reason in problems, for a more helpful message. */
  invalid?: string;
}

/** Settings documented together: a section of docs/configuration.md and of .dev.vars.example. */
export interface SettingGroup {
  title: string;
  /** Markdown before and after the settings in the docs. */
  intro?: string;
  notes?: string;
  settings: readonly Setting<unknown>[];
}

/** A declaration, with its literal name and default kept for the types below. */
export function setting<const S extends Setting<unknown>>(s: S): S {
  return s;
}

/** What reading a setting gives: its type, or null too when it has no default (missing, or invalid). */
export type ValueOf<S> = S extends { type: SettingType<infer T> } ? (S extends { default: string } ? T : T | null) : never;

export interface ReadOptions {
  /** Required here although the declaration is not; a string is the reason to report. */
  required?: boolean | string;
}

/** Reads settings from one env object, collecting every problem (a later check can add its own). */
export class SettingsReader {
  readonly problems: ConfigProblem[] = [];
  readonly #env: object;

  constructor(env: object) {
    this.#env = env;
  }

  /** The trimmed string value, "" when unset or not a string. */
  raw(name: string): string {
    const value: unknown = (this.#env as Record<string, unknown>)[name];
    return typeof value === "string" ? value.trim() : "";
  }

  problem(setting: string, reason: string): void {
    this.problems.push({ setting, reason });
  }

  read<S extends Setting<unknown>>(s: S, options: ReadOptions = {}): ValueOf<S> {
    return this.#read(s, options) as ValueOf<S>;
  }

  #read<T>(s: Setting<T>, options: ReadOptions): T | null {
    const given = this.raw(s.name);
    const raw = given !== "" ? given : s.default;
    if (raw === undefined) {
      const required = options.required ?? s.required;
      if (required) this.problem(s.name, typeof required === "string" ? required : "is required");
      return null;
    }
    const parsed = s.type.parse(raw);
    if (parsed.ok) return parsed.value;
    this.problem(s.name, s.invalid ?? parsed.reason);
    return s.default === undefined ? null : defaultOf(s);
  }
}

/** A setting's default as a value; every declared default is valid (test/node/settings-docs.test.ts). */
export function defaultOf<T>(s: Setting<T>): T {
  const parsed = s.type.parse(s.default ?? "");
  if (!parsed.ok) throw new Error(`${s.name}'s default ${parsed.reason}`);
  return parsed.value;
}

/** Markdown prose as plain text, for comments and `--help`: code spans and emphasis lose their markers. */
export function plainText(markdown: string): string {
  return markdown.replace(/\*\*(.+?)\*\*/g, "$1").replace(/`([^`]*)`/g, "$1");
}

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = (reason: string): Parsed<never> => ({ ok: false, reason });

function splitList(raw: string): string[] {
  return raw
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

/** A comma-separated list whose every entry must pass; one bad entry makes the whole setting invalid. */
function listOf<T>(rule: string, reason: string, item: (entry: string) => T | null): SettingType<T[]> {
  return {
    rule,
    parse(raw) {
      const out: T[] = [];
      for (const entry of splitList(raw)) {
        const value = item(entry);
        if (value === null) return bad(reason);
        out.push(value);
      }
      return ok(out);
    },
  };
}

export function text(options: { minLength?: number } = {}): SettingType<string> {
  const min = options.minLength ?? 0;
  return {
    rule: min > 0 ? `At least ${min} characters.` : "Any string.",
    parse: (raw) => (raw.length >= min ? ok(raw) : bad(`must be at least ${min} characters`)),
  };
}

export function int(min: number, max: number): SettingType<number> {
  return {
    rule: `An integer from \`${min}\` to \`${max}\`, digits only.`,
    parse(raw) {
      const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
      return Number.isSafeInteger(n) && n >= min && n <= max ? ok(n) : bad(`must be an integer from ${min} to ${max}`);
    },
  };
}

export function oneOf<const V extends string>(values: readonly V[]): SettingType<V> {
  const quoted = values.map((v) => `"${v}"`);
  const reason = quoted.length === 2 ? `must be ${quoted[0]} or ${quoted[1]}` : `must be one of ${quoted.join(", ")}`;
  return {
    rule: `${values.map((v) => `\`${v}\``).join(", ")}.`,
    parse: (raw) => ((values as readonly string[]).includes(raw) ? ok(raw as V) : bad(reason)),
  };
}

/**
 * An http(s) URL without user name or password. Strict (the Worker's settings): no query or fragment either.
 * `originOnly` (the origin's flags, the CLI's edge URL): a path or query is allowed and ignored by the caller.
 */
export function httpUrl(options: { originOnly?: boolean } = {}): SettingType<URL> {
  const strict = !options.originOnly;
  return {
    rule: strict
      ? "An `http://` or `https://` URL without user name, password, query or fragment."
      : "An `http://` or `https://` URL without user name or password; only its scheme, host and port are used.",
    parse(raw) {
      const url = URL.canParse(raw) ? new URL(raw) : null;
      if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) return bad("must be an http(s) URL");
      if (!strict) return url.username || url.password ? bad("must not contain a user name or password") : ok(url);
      if (url.username || url.password || url.search || url.hash) return bad("must not contain credentials, a query or a fragment");
      return ok(url);
    },
  };
}

/** Exact browser origins, as `URL.origin` spells them. */
export const origins: SettingType<string[]> = listOf(
  "A comma-separated list of exact origins: `http(s)://host[:port]`, no path, e.g. `https://app.example.com,https://other.example.com`. One bad entry makes the whole setting invalid.",
  "must be a comma-separated list of origins like https://app.example.com",
  (entry) => {
    const url = URL.canParse(entry) ? new URL(entry) : null;
    const web = url?.protocol === "http:" || url?.protocol === "https:";
    return url && web && url.origin === entry.replace(/\/$/, "") ? url.origin : null;
  },
);

/** Path prefixes: "/api/*" becomes "/api/" (which also matches "/api"), an entry without "*" one exact path. */
export const pathPrefixes: SettingType<string[]> = listOf(
  "A comma-separated list of paths that start with `/`, use only `A-Z a-z 0-9 . _ ~ - /`, may end in `*`, and contain no `//` or `/../`.",
  "must be a comma-separated list of path prefixes like /api/*",
  (entry) => {
    if (!/^\/[A-Za-z0-9._~\-/]*\*?$/.test(entry) || entry.includes("//") || entry.includes("/../")) return null;
    return entry.endsWith("*") ? entry.slice(0, -1) : entry;
  },
);

const EMAIL = /^[^\s@,]+@[^\s@,]+$/;

export function isEmail(value: string): boolean {
  return EMAIL.test(value);
}

/** Email addresses, lower-cased: they are compared case-insensitively. */
export const emails: SettingType<string[]> = listOf(
  "A comma-separated list of email addresses (compared case-insensitively).",
  "must be a comma-separated list of email addresses",
  (entry) => (isEmail(entry) ? entry.toLowerCase() : null),
);

export type SigningJwk = JWK & { kid: string };

function jwkOf(value: unknown, isPrivate: boolean): SigningJwk | null {
  if (typeof value !== "object" || value === null) return null;
  const jwk = value as JWK;
  if (jwk.kty !== "EC" || jwk.crv !== "P-256" || typeof jwk.x !== "string" || typeof jwk.y !== "string") return null;
  if (typeof jwk.kid !== "string" || !/^[A-Za-z0-9._-]{1,64}$/.test(jwk.kid)) return null;
  if (isPrivate !== (typeof jwk.d === "string")) return null;
  return jwk as SigningJwk;
}

function json(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return null;
  }
}

const KID_RULE = "a `kid` of 1–64 characters from `A-Z a-z 0-9 . _ -`";

/** An ES256 (P-256) private key as a JWK. */
export const privateJwk: SettingType<SigningJwk> = {
  rule: `A P-256 private key as a JWK (JSON) with \`"kty":"EC"\`, \`"crv":"P-256"\`, \`x\`, \`y\`, \`d\` and ${KID_RULE}.`,
  parse(raw) {
    const jwk = jwkOf(json(raw), true);
    return jwk ? ok(jwk) : bad("must be an ES256 (P-256) private JWK with a kid");
  },
};

/** ES256 public keys: a JSON array of JWKs, or a JWKS ({"keys": [...]}). */
export const publicJwks: SettingType<SigningJwk[]> = {
  rule: `A JSON array (or JWKS) of ES256 public JWKs, each with ${KID_RULE}.`,
  parse(raw) {
    if (raw === "") return ok([]);
    const list = json(raw);
    const items: unknown = Array.isArray(list) ? list : (list as { keys?: unknown } | null)?.keys;
    const keys = Array.isArray(items) ? items.map((k) => jwkOf(k, false)) : [null];
    const valid = keys.filter((k) => k !== null);
    return valid.length === keys.length ? ok(valid) : bad("must be a JSON array (or JWKS) of ES256 public JWKs with kids");
  },
};

/** Parses once per env object and reuses the result for the isolate's life (env objects are stable per deployment). */
export function perEnv<R>(parse: (env: object) => R): (env: object) => R {
  const cache = new WeakMap<object, R>();
  return (env) => {
    let result = cache.get(env);
    if (result === undefined) {
      result = parse(env);
      cache.set(env, result);
    }
    return result;
  };
}
