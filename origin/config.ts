// The origin's settings from flags and environment, as declared in shared/settings/origin.ts; checked before it starts.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { isPlainHttpToNetwork, ORIGIN_OPTION_LIST, ORIGIN_OPTIONS, originUsage, plainHttpReason, type OriginOption } from "../shared/settings/index.ts";
import type { OriginOptions } from "./server.ts";
import { parseJwks, type PublicJwk } from "./keys.ts";

/** A setting that cannot be used; main.ts prints it and exits 2. */
export class OriginConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OriginConfigError";
  }
}

/** What can be given on the command line or to runOrigin(); JWKS as a file path or JSON text, or already parsed. */
export interface OriginSettings {
  port?: number;
  host?: string;
  upstream?: string | null;
  edge?: string | null;
  issuer?: string | null;
  jwks?: string | { keys: unknown[] } | null;
  audience?: string | null;
  dataDir?: string;
  /** Allow a plain-http --edge that is not loopback. */
  insecure?: boolean;
}

export const USAGE = originUsage("outpost origin");

/** Parses `node origin/main.ts …` flags; unknown flags are an error. */
export function parseOriginArgs(argv: string[]): OriginSettings {
  const options = Object.fromEntries(ORIGIN_OPTION_LIST.map((o) => [o.flag, { type: o.boolean ? ("boolean" as const) : ("string" as const) }]));
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({ args: argv, options }));
  } catch (err) {
    throw new OriginConfigError(`${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
  }
  return originSettingsFromFlags(values);
}

/** The settings that flags give, keyed by flag name (`data-dir`); what is left out falls back to the environment. */
export function originSettingsFromFlags(flags: Readonly<Record<string, unknown>>): OriginSettings {
  const settings: OriginSettings = {};
  for (const option of ORIGIN_OPTION_LIST) {
    const value = flags[option.flag];
    if (option.key === "insecure") {
      if (value === true) settings.insecure = true;
      continue;
    }
    if (typeof value !== "string") continue;
    if (option.key === "port") settings.port = check(ORIGIN_OPTIONS.port, value);
    else settings[option.key] = value;
  }
  return settings;
}

/** A value by its option's type; the problem names the flag, not the value. */
function check<T>(option: OriginOption<T>, raw: string): T {
  const parsed = option.type.parse(raw);
  if (!parsed.ok) throw new OriginConfigError(`--${option.flag} ${parsed.reason}`);
  return parsed.value;
}

/** A value from the option's environment variable; the problem names the variable. */
function checkEnv<T>(option: OriginOption<T> & { env: string }, raw: string): T {
  const parsed = option.type.parse(raw);
  if (!parsed.ok) throw new OriginConfigError(`${option.env} ${parsed.reason}`);
  return parsed.value;
}

function loadJwks(source: string | { keys: unknown[] }): { keys: PublicJwk[] } {
  if (typeof source !== "string") return parseJwks(JSON.stringify(source));
  const text = /^\s*[[{]/.test(source) ? source : readFile(source);
  try {
    return parseJwks(text);
  } catch (err) {
    throw new OriginConfigError(`--jwks is not a usable JWKS: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function readFile(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new OriginConfigError(`cannot read --jwks file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

const nonEmpty = (...values: (string | null | undefined)[]) => values.find((v) => typeof v === "string" && v.trim() !== "")?.trim();

/** Fills what the settings leave out from the environment, checks it all, and returns options for startOrigin(). */
export function resolveOriginOptions(settings: OriginSettings, env: NodeJS.ProcessEnv = process.env): OriginOptions {
  const O = ORIGIN_OPTIONS;
  const upstream = nonEmpty(settings.upstream, env[O.upstream.env]);
  const edge = nonEmpty(settings.edge, env[O.edge.env]);
  const issuer = nonEmpty(settings.issuer, env[O.issuer.env]);
  const jwksSource = settings.jwks && typeof settings.jwks === "object" ? settings.jwks : nonEmpty(settings.jwks, env[O.jwks.env]);
  if (jwksSource && !edge && !issuer) throw new OriginConfigError("--jwks needs the issuer too: give --edge or --issuer (the edge's PUBLIC_URL)");
  const insecure = settings.insecure ?? checkEnv(O.insecure, nonEmpty(env[O.insecure.env]) ?? O.insecure.default);
  const edgeUrl = edge ? check(O.edge, edge) : null;
  // The JWKS that decides whom the origin trusts is fetched from --edge: in the clear, anyone on the way could swap it.
  if (edgeUrl && isPlainHttpToNetwork(edgeUrl) && !insecure) {
    throw new OriginConfigError(`--edge ${plainHttpReason(`--insecure (or ${O.insecure.env}=1)`)}`);
  }
  return {
    port: settings.port ?? check(O.port, O.port.default),
    host: settings.host ?? O.host.default,
    upstream: upstream ? check(O.upstream, upstream).origin : null,
    edge: edgeUrl ? edgeUrl.origin : null,
    issuer: issuer ? check(O.issuer, issuer).origin : null,
    jwks: jwksSource ? loadJwks(jwksSource) : null,
    audience: nonEmpty(settings.audience, env[O.audience.env]) ?? O.audience.default,
    dataDir: nonEmpty(settings.dataDir, env[O.dataDir.env]) ?? O.dataDir.default,
  };
}
