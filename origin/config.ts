// The origin's settings from flags and environment: port, host, upstream app, the edge's keys and audience, data directory.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
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
}

export const USAGE = `Usage: outpost origin [--port 8788] [--host 127.0.0.1] [--upstream http://localhost:3000]
                     [--edge https://outpost.example.com] [--jwks <file|json>] [--issuer <url>]
                     [--audience origin] [--data-dir .outpost]
  --edge       the edge's URL: assertions' issuer and where /.well-known/jwks.json is fetched (OUTPOST_EDGE_URL)
  --jwks       the edge's public keys as a file or JSON, for offline setups; needs --edge or --issuer (OUTPOST_JWKS)
  --issuer     the issuer when it is not --edge's origin: the edge's PUBLIC_URL (OUTPOST_ISSUER)
  --audience   the edge's ORIGIN_AUDIENCE (default: ORIGIN_AUDIENCE, else "origin")
  --upstream   forward everything but /health and /outpost/* to this app instead of the built-in API (OUTPOST_UPSTREAM)
  --data-dir   where origin.db is kept (OUTPOST_DATA_DIR, default ./.outpost)`;

/** Parses `node origin/main.ts …` flags; unknown flags are an error. */
export function parseOriginArgs(argv: string[]): OriginSettings {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        port: { type: "string" },
        host: { type: "string" },
        upstream: { type: "string" },
        edge: { type: "string" },
        issuer: { type: "string" },
        jwks: { type: "string" },
        audience: { type: "string" },
        "data-dir": { type: "string" },
      },
    }));
  } catch (err) {
    throw new OriginConfigError(`${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
  }
  const settings: OriginSettings = {};
  if (values.port !== undefined) {
    const port = /^\d+$/.test(values.port) ? Number(values.port) : NaN;
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new OriginConfigError(`--port must be a port number (got ${values.port})`);
    settings.port = port;
  }
  if (values.host !== undefined) settings.host = values.host;
  if (values.upstream !== undefined) settings.upstream = values.upstream;
  if (values.edge !== undefined) settings.edge = values.edge;
  if (values.issuer !== undefined) settings.issuer = values.issuer;
  if (values.jwks !== undefined) settings.jwks = values.jwks;
  if (values.audience !== undefined) settings.audience = values.audience;
  if (values["data-dir"] !== undefined) settings.dataDir = values["data-dir"];
  return settings;
}

function httpUrl(raw: string, name: string): string {
  if (!URL.canParse(raw)) throw new OriginConfigError(`${name} must be an http(s) URL (got ${JSON.stringify(raw)})`);
  const url = new URL(raw);
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new OriginConfigError(`${name} must be an http(s) URL (got ${JSON.stringify(raw)})`);
  if (url.username || url.password) throw new OriginConfigError(`${name} must not contain a user name or password`);
  return url.origin;
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
  const upstream = nonEmpty(settings.upstream, env.OUTPOST_UPSTREAM);
  const edge = nonEmpty(settings.edge, env.OUTPOST_EDGE_URL);
  const issuer = nonEmpty(settings.issuer, env.OUTPOST_ISSUER);
  const jwksSource = settings.jwks && typeof settings.jwks === "object" ? settings.jwks : nonEmpty(settings.jwks as string | undefined, env.OUTPOST_JWKS);
  const audience = nonEmpty(settings.audience, env.ORIGIN_AUDIENCE) ?? "origin";
  if (jwksSource && !edge && !issuer) throw new OriginConfigError("--jwks needs the issuer too: give --edge or --issuer (the edge's PUBLIC_URL)");
  return {
    port: settings.port ?? 8788,
    host: settings.host ?? "127.0.0.1",
    upstream: upstream ? httpUrl(upstream, "--upstream") : null,
    edge: edge ? httpUrl(edge, "--edge") : null,
    issuer: issuer ? httpUrl(issuer, "--issuer") : null,
    jwks: jwksSource ? loadJwks(jwksSource) : null,
    audience,
    dataDir: nonEmpty(settings.dataDir, env.OUTPOST_DATA_DIR) ?? ".outpost",
  };
}
