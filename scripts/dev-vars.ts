// Turns .dev.vars.example into a local .dev.vars: fills `<generate:KIND>` values, tops up old files, derives port overrides.
import { createHash, generateKeyPairSync, randomBytes, randomUUID } from "node:crypto";
import { parseEnv } from "node:util";
import { LOCAL_HOST, ORIGIN_URL, PUBLIC_URL, type GeneratorKind } from "../shared/settings/index.ts";

/** Produces one freshly generated value; called once per placeholder, so no two settings share a value. */
export type Generator = () => string;

/**
 * The generators an example value can ask for with `<generate:KIND>`, one per kind shared/settings declares.
 * A new secret needs only `generate: KIND` on its declaration (and an entry here if its kind is new).
 */
export const GENERATORS: Readonly<Record<GeneratorKind, Generator>> = {
  /** 256 random bits, base64url: shared secrets, HMAC keys. */
  secret: () => randomBytes(32).toString("base64url"),
  /** A random UUID: identifiers such as an audience that must merely be unique to this machine. */
  uuid: () => randomUUID(),
  /** A P-256 private key as a JWK (JSON) for ES256 signing, with its RFC 7638 thumbprint as kid. */
  "es256-private-jwk": () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const jwk = privateKey.export({ format: "jwk" });
    const { crv, x, y, d } = jwk;
    if (crv !== "P-256" || !x || !y || !d) throw new Error("es256-private-jwk: unexpected key export");
    const kid = createHash("sha256")
      .update(JSON.stringify({ crv, kty: "EC", x, y }))
      .digest("base64url");
    return JSON.stringify({ kty: "EC", crv, x, y, d, alg: "ES256", use: "sig", kid });
  },
};

// Only a whole value is a placeholder (optionally quoted, optionally followed by a comment), so the
// syntax can be mentioned in comments without being replaced.
const PLACEHOLDER_LINE = /^(\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*)(["']?)<generate:([A-Za-z0-9-]+)>\3(\s+#.*)?\s*$/;

export interface Placeholder {
  name: string;
  kind: string;
  /** 1-based line number in the example. */
  line: number;
}

/** The settings in an example whose values are generated locally. */
export function placeholders(example: string): Placeholder[] {
  const found: Placeholder[] = [];
  example.split("\n").forEach((text, i) => {
    const m = PLACEHOLDER_LINE.exec(text.replace(/\r$/, ""));
    if (m) found.push({ name: m[2]!, kind: m[4]!, line: i + 1 });
  });
  return found;
}

/** The example text with every `<generate:KIND>` value replaced by a new value; every other byte is kept. */
export function fillDevVars(example: string, generators: Readonly<Record<string, Generator>> = GENERATORS): string {
  return example
    .split("\n")
    .map((text, i) => {
      const cr = text.endsWith("\r") ? "\r" : "";
      const m = PLACEHOLDER_LINE.exec(cr ? text.slice(0, -1) : text);
      if (!m) return text;
      const [, prefix, name, , kind, comment] = m;
      return `${prefix}${formatValue(generate(kind!, name!, i + 1, generators))}${comment ?? ""}${cr}`;
    })
    .join("\n");
}

function generate(kind: string, name: string, line: number, generators: Readonly<Record<string, Generator>>): string {
  const gen = Object.hasOwn(generators, kind) ? generators[kind] : undefined;
  if (!gen) {
    const known = Object.keys(generators).join(", ");
    throw new Error(`.dev.vars.example line ${line}: ${name} asks for <generate:${kind}>, but there is no such generator (known: ${known})`);
  }
  const value = gen();
  if (typeof value !== "string" || value.includes("\n")) throw new Error(`generator ${kind} must return a one-line string`);
  return value;
}

/** A value as dotenv reads it back unchanged: bare when plain, single-quoted (taken literally) otherwise. */
export function formatValue(value: string): string {
  if (/^[A-Za-z0-9_.:/+=@-]*$/.test(value)) return value;
  if (!value.includes("'")) return `'${value}'`;
  if (!value.includes('"')) return `"${value}"`;
  throw new Error("a generated value may not contain both quote characters");
}

export function parseDevVars(text: string): Record<string, string> {
  return parseEnv(text) as Record<string, string>;
}

export interface Completion {
  /** The existing text, with generated entries appended for settings it lacks. */
  text: string;
  /** Generated settings that were appended. */
  added: string[];
  /** Settings the example has, the file lacks, and that cannot be generated; the Worker's defaults apply. */
  missing: string[];
}

/**
 * Brings an existing .dev.vars up to date with a newer example without touching any line already in it:
 * secrets added to the example later are generated and appended, so `npm start` keeps working after a pull.
 */
export function completeDevVars(example: string, existing: string, generators: Readonly<Record<string, Generator>> = GENERATORS): Completion {
  const have = parseDevVars(existing);
  const wanted = placeholders(example);
  const toAdd = wanted.filter((p) => !Object.hasOwn(have, p.name));
  const generatedNames = new Set(wanted.map((p) => p.name));
  const missing = Object.keys(parseDevVars(example)).filter((name) => !Object.hasOwn(have, name) && !generatedNames.has(name));
  if (toAdd.length === 0) return { text: existing, added: [], missing };
  const lines = toAdd.map((p) => `${p.name}=${formatValue(generate(p.kind, p.name, p.line, generators))}`);
  const sep = existing === "" || existing.endsWith("\n") ? "" : "\n";
  const text = `${existing}${sep}\n# Added by npm start: new in .dev.vars.example, generated locally.\n${lines.join("\n")}\n`;
  return { text, added: toAdd.map((p) => p.name), missing };
}

export interface LocalPorts {
  edgePort: number;
  originPort: number;
  defaultEdgePort: number;
  defaultOriginPort: number;
}

const LOOPBACK = new Set(["localhost", LOCAL_HOST, "[::1]"]);

/**
 * Worker settings to pass as `wrangler dev --var` so a stack on non-default ports points at itself.
 * PUBLIC_URL is only moved when it still names the default local edge; a deliberate value is kept.
 */
export function localOverrides(vars: Readonly<Record<string, string>>, ports: LocalPorts): Record<string, string> {
  const out: Record<string, string> = {};
  if (ports.originPort !== ports.defaultOriginPort) out[ORIGIN_URL.name] = `http://${LOCAL_HOST}:${ports.originPort}`;
  if (ports.edgePort !== ports.defaultEdgePort) {
    const current = (vars[PUBLIC_URL.name] ?? "").trim();
    const parsed = URL.canParse(current) ? new URL(current) : null;
    if (parsed !== null && LOOPBACK.has(parsed.hostname) && parsed.port === String(ports.defaultEdgePort)) {
      out[PUBLIC_URL.name] = `http://localhost:${ports.edgePort}`;
    }
  }
  return out;
}
