// The origin's options, declared once: each flag of `outpost origin` (and `node origin/main.ts`), its environment variable, default and help.
import { LOCAL_HOST, ORIGIN_PORT } from "./edge.ts";
import { ORIGIN_AUDIENCE } from "./identity.ts";
import { httpUrl, int, plainText, text, type Setting, type SettingType } from "./types.ts";

/** Where the option lands in the origin's settings (OriginSettings in origin/config.ts). */
export type OriginKey = "port" | "host" | "upstream" | "edge" | "issuer" | "jwks" | "audience" | "dataDir" | "insecure";

export interface OriginOption<T> extends Omit<Setting<T>, "name"> {
  key: OriginKey;
  /** The flag without its dashes. */
  flag: string;
  /** What the flag's value is, for the usage text: `--edge <url>`. */
  value: string;
  /** The environment variable read when the flag is not given. */
  env?: string;
  /** A switch: the flag takes no value (`--insecure`); its environment variable takes `1`/`true` or `0`/`false`. */
  boolean?: true;
}

const onOff: SettingType<boolean> = {
  rule: "`1` or `true`, `0` or `false`.",
  parse(raw) {
    if (raw === "1" || raw === "true") return { ok: true, value: true };
    if (raw === "0" || raw === "false") return { ok: true, value: false };
    return { ok: false, reason: "must be 1, true, 0 or false" };
  },
};

const url = httpUrl({ originOnly: true });

/** In the order `--help` lists them. */
export const ORIGIN_OPTIONS = {
  port: {
    key: "port",
    flag: "port",
    value: "port",
    type: int(0, 65535),
    default: String(ORIGIN_PORT),
    description: "Port to listen on; `0` picks any free port.",
  },
  host: {
    key: "host",
    flag: "host",
    value: "host",
    type: text(),
    default: LOCAL_HOST,
    description: "Address to listen on. Keep it on loopback: only `cloudflared` needs to reach it.",
  },
  edge: {
    key: "edge",
    flag: "edge",
    value: "url",
    env: "OUTPOST_EDGE_URL",
    type: url,
    description:
      "The edge's URL: the assertions' issuer, and where `/.well-known/jwks.json` is fetched. `https://` unless it is loopback (`localhost`, `127.0.0.0/8`, `[::1]`) or `--insecure` is given.",
  },
  insecure: {
    key: "insecure",
    flag: "insecure",
    value: "",
    boolean: true,
    env: "OUTPOST_INSECURE",
    type: onOff,
    default: "false",
    description: "Allow `--edge` to be plain `http://` to a host that is not loopback (a private network you trust).",
  },
  jwks: {
    key: "jwks",
    flag: "jwks",
    value: "file|json",
    env: "OUTPOST_JWKS",
    type: text(),
    description: 'The edge\'s public keys as a file or JSON (`{"keys":[…]}`), for offline setups. No JWKS is fetched then; needs `--edge` or `--issuer`.',
  },
  issuer: {
    key: "issuer",
    flag: "issuer",
    value: "url",
    env: "OUTPOST_ISSUER",
    type: url,
    defaultText: "`--edge`'s origin",
    description: "The edge's `PUBLIC_URL`, when it is not `--edge`'s origin (e.g. the JWKS is fetched over loopback).",
  },
  audience: {
    key: "audience",
    flag: "audience",
    value: "aud",
    env: ORIGIN_AUDIENCE.name,
    type: ORIGIN_AUDIENCE.type,
    default: ORIGIN_AUDIENCE.default,
    description: "Must equal the edge's `ORIGIN_AUDIENCE`.",
  },
  upstream: {
    key: "upstream",
    flag: "upstream",
    value: "url",
    env: "OUTPOST_UPSTREAM",
    type: url,
    description:
      "Forward everything except `/health` and `/outpost/*` to this app (e.g. `http://localhost:3000`) instead of the built-in API. Only scheme, host and port are used.",
  },
  dataDir: {
    key: "dataDir",
    flag: "data-dir",
    value: "dir",
    env: "OUTPOST_DATA_DIR",
    type: text(),
    default: ".outpost",
    description: "Where the built-in API keeps `origin.db` (SQLite); `:memory:` keeps nothing. `.outpost/` is git-ignored.",
  },
} as const satisfies Record<OriginKey, OriginOption<unknown>>;

export const ORIGIN_OPTION_LIST: readonly OriginOption<unknown>[] = Object.values(ORIGIN_OPTIONS);

/** One option's help line, as plain text: its meaning, then its environment variable and default. */
export function originOptionHelp(option: OriginOption<unknown>): string {
  const fallback = option.default ?? (option.defaultText && plainText(option.defaultText));
  const extra = [option.env, fallback && `default ${fallback}`].filter(Boolean).join(", ");
  const description = plainText(option.description);
  return extra ? `${description.replace(/\.$/, "")} (${extra}).` : description;
}

/** How the option is written on a command line: `--edge <url>`, or `--insecure` for a switch. */
export function originFlag(option: OriginOption<unknown>): string {
  return option.boolean ? `--${option.flag}` : `--${option.flag} <${option.value}>`;
}

/** `--help` for the origin: one line per declared option. */
export function originUsage(command: string): string {
  const rows = ORIGIN_OPTION_LIST.map((o) => [originFlag(o), originOptionHelp(o)] as const);
  const width = Math.max(...rows.map(([flag]) => flag.length)) + 2;
  return [`Usage: ${command} [options]`, ...rows.map(([flag, help]) => `  ${flag.padEnd(width)}${help}`)].join("\n");
}
