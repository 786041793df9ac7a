// The identity settings (provider, keys, access list, token limits), declared once, and the AuthConfig parsed from them.
import { PUBLIC_URL } from "./edge.ts";
import {
  emails,
  httpUrl,
  int,
  oneOf,
  perEnv,
  privateJwk,
  publicJwks,
  setting,
  SettingsReader,
  text,
  type ConfigProblem,
  type SettingGroup,
  type SigningJwk,
} from "./types.ts";

import { PROVIDERS, type Provider, type Role } from "../identity.ts";

export const AUTH_PROVIDER = setting({
  name: "AUTH_PROVIDER",
  type: oneOf<Provider>(PROVIDERS),
  default: "outpost",
  description:
    "`outpost`: Outpost is its own issuer (enrollment links, device login). `supabase`: Supabase Auth user JWTs are accepted as well (set `SUPABASE_URL`). Outpost-issued device tokens work under both.",
});

export const OUTPOST_SIGNING_KEY = setting({
  name: "OUTPOST_SIGNING_KEY",
  type: privateJwk,
  required: true,
  secret: true,
  generate: "es256-private-jwk",
  requiredWhen: "Without a valid key `/ready` answers 503 naming it.",
  description:
    "The Worker's ES256 signing key: it signs Outpost's tokens and the assertions the origin checks. Each machine and each deployment should have its own.",
  details: [
    "A key `npm start` generates has its RFC 7638 thumbprint as `kid`. For production, generate a separate key and store it as a secret, for example:",
    "",
    "```sh",
    `node --input-type=module -e 'import { GENERATORS } from "./scripts/dev-vars.ts"; console.log(GENERATORS["es256-private-jwk"]())' \\`,
    "  | npx wrangler secret put OUTPOST_SIGNING_KEY",
    "```",
  ].join("\n"),
});

const OUTPOST_PREVIOUS_KEYS = setting({
  name: "OUTPOST_PREVIOUS_KEYS",
  type: publicJwks,
  default: "",
  secret: true,
  description:
    "Public halves of rotated signing keys still honoured, so tokens signed before a rotation stay valid until they expire. Published in `/.well-known/jwks.json`.",
});

const SUPABASE_URL = setting({
  name: "SUPABASE_URL",
  type: httpUrl(),
  invalid: "must be the project URL, e.g. https://<ref>.supabase.co",
  requiredWhen: "With `AUTH_PROVIDER=supabase`.",
  description:
    "The Supabase project URL, e.g. `https://<ref>.supabase.co` or `http://127.0.0.1:54321`. Keys come from `${SUPABASE_URL}/auth/v1/.well-known/jwks.json` (cached 10 min; an unknown `kid` refetched at most once per 30 s); `iss` must be `${SUPABASE_URL}/auth/v1`, `aud` and `role` `authenticated`. Trusted only with `AUTH_PROVIDER=supabase` (checked, but used for nothing, otherwise).",
});

const SUPABASE_JWT_SECRET = setting({
  name: "SUPABASE_JWT_SECRET",
  type: text({ minLength: 32 }),
  secret: true,
  description: "Legacy Supabase projects only: HS256 tokens are accepted when this is set, and never otherwise.",
});

const SUPABASE_ANON_KEY = setting({
  name: "SUPABASE_ANON_KEY",
  type: text(),
  requiredWhen: "With `AUTH_PROVIDER=supabase`, for the web app.",
  description:
    "The Supabase project's anon (public) key, which the web app signs in with (supabase-js); published in `/.well-known/openid-configuration` as `supabase_anon_key`. Public by design and never accepted as a user token: never the `service_role` key.",
});

export const OWNER_EMAILS = setting({
  name: "OWNER_EMAILS",
  type: emails,
  default: "",
  example: "owner@localhost",
  requiredWhen: "**Yes**: with no owner every `/api` request is 403, and `/ready` says so.",
  description:
    "Owners: read, write, manage devices, mint enrollment links. With no owner every `/api` request is refused. `npm start` prints a single-use enrollment link for the first owner: put your own email here.",
});

const MEMBER_EMAILS = setting({
  name: "MEMBER_EMAILS",
  type: emails,
  default: "",
  description: "Members: read and write (heartbeats, proxied writes).",
});

const VIEWER_EMAILS = setting({
  name: "VIEWER_EMAILS",
  type: emails,
  default: "",
  description: "Viewers: read only (GET/HEAD).",
});

export const ORIGIN_AUDIENCE = setting({
  name: "ORIGIN_AUDIENCE",
  type: text(),
  default: "origin",
  description: "The `aud` of the assertions the Worker signs for the origin; the origin checks it (`outpost origin --audience`).",
});

const MAX_TOKEN_AGE_SECONDS = setting({
  name: "MAX_TOKEN_AGE_SECONDS",
  type: int(60, 30 * 86_400),
  default: "86400",
  description:
    "The oldest Supabase access token accepted, in seconds since it was issued (`iat`). Outpost's own tokens have fixed lifetimes (access 15 min, WebSocket ticket 30 s, scoped ≤ 15 min, assertion 60 s, enrollment ≤ 24 h).",
});

const DEVICE_LOGIN_INTERVAL_SECONDS = setting({
  name: "DEVICE_LOGIN_INTERVAL_SECONDS",
  type: int(1, 60),
  default: "5",
  description:
    "How many seconds a device login (`outpost login`) is told to wait between polls for approval; 5 is RFC 8628's default polling interval. A client that polls faster is told to slow down by 5 s more each time.",
});

export const IDENTITY_GROUP: SettingGroup = {
  title: "Identity",
  intro: "Who may use the gateway and how their tokens are checked. The reasons behind the rules are in [security.md](security.md).",
  notes: [
    "An email on more than one list gets the strongest role. Anyone else who signs in gets 403 `FORBIDDEN`.",
    "Owners can also grant the member or viewer role at runtime, without a redeploy: `GET /api/access`,",
    '`PUT /api/access/<email>` with `{"role":"member"|"viewer"}` and optionally `"expiresAt"` (an ISO 8601 end,',
    "within a year), `DELETE /api/access/<email>`; see [access.md](access.md). Settings always win (an entry from the",
    "settings cannot be changed through the API, and owners come only from `OWNER_EMAILS`); a grant or removal takes",
    "effect on other Worker isolates within 30 s, and a grant that ends stops working at once.",
    "",
    "With Supabase, turn on email confirmation in the project: Outpost trusts the `email` claim, and anonymous",
    "users (`is_anonymous`) are refused.",
  ].join("\n"),
  settings: [
    OUTPOST_SIGNING_KEY,
    OUTPOST_PREVIOUS_KEYS,
    AUTH_PROVIDER,
    SUPABASE_URL,
    SUPABASE_JWT_SECRET,
    SUPABASE_ANON_KEY,
    OWNER_EMAILS,
    MEMBER_EMAILS,
    VIEWER_EMAILS,
    ORIGIN_AUDIENCE,
    MAX_TOKEN_AGE_SECONDS,
    DEVICE_LOGIN_INTERVAL_SECONDS,
  ],
};

export interface AuthConfig {
  provider: Provider;
  /** Issuer of Outpost's own tokens: PUBLIC_URL's origin. */
  issuer: string;
  signingKey: SigningJwk;
  previousKeys: SigningJwk[];
  supabase: { url: string; issuer: string; jwksUrl: string; jwtSecret: string | null; anonKey: string | null } | null;
  roles: ReadonlyMap<string, Role>;
  hasOwner: boolean;
  originAudience: string;
  maxTokenAgeSeconds: number;
  /** The device-login polling interval handed to new device codes. */
  deviceLoginIntervalSeconds: number;
}

export type AuthConfigResult = { ok: true; auth: AuthConfig } | { ok: false; problems: ConfigProblem[] };

function parseAuthConfig(env: object): AuthConfigResult {
  const settings = new SettingsReader(env);
  const provider = settings.read(AUTH_PROVIDER);
  const publicUrl = settings.read(PUBLIC_URL, { required: "is required: it is the issuer of Outpost's tokens" });
  const signingKey = settings.read(OUTPOST_SIGNING_KEY);
  const previousKeys = settings.read(OUTPOST_PREVIOUS_KEYS);

  let supabase: AuthConfig["supabase"] = null;
  const supabaseUrl = settings.read(SUPABASE_URL, { required: provider === "supabase" && SUPABASE_URL.invalid });
  if (supabaseUrl) {
    const url = supabaseUrl.href.replace(/\/+$/, "");
    const jwtSecret = settings.read(SUPABASE_JWT_SECRET);
    // A SUPABASE_URL left set under AUTH_PROVIDER=outpost is checked but trusted for nothing.
    if (provider === "supabase") {
      supabase = {
        url,
        issuer: `${url}/auth/v1`,
        jwksUrl: `${url}/auth/v1/.well-known/jwks.json`,
        jwtSecret,
        // Public by design (the web app signs in with it); published in the openid-configuration.
        anonKey: settings.read(SUPABASE_ANON_KEY),
      };
    }
  }

  const roles = new Map<string, Role>();
  // Later lists never downgrade an earlier, stronger role for the same email.
  for (const [list, role] of [
    [OWNER_EMAILS, "owner"],
    [MEMBER_EMAILS, "member"],
    [VIEWER_EMAILS, "viewer"],
  ] as const) {
    for (const email of settings.read(list)) if (!roles.has(email)) roles.set(email, role);
  }

  const originAudience = settings.read(ORIGIN_AUDIENCE);
  const maxTokenAgeSeconds = settings.read(MAX_TOKEN_AGE_SECONDS);
  const deviceLoginIntervalSeconds = settings.read(DEVICE_LOGIN_INTERVAL_SECONDS);

  if (settings.problems.length > 0 || !signingKey || !publicUrl) return { ok: false, problems: settings.problems };
  return {
    ok: true,
    auth: {
      provider,
      issuer: publicUrl.origin,
      signingKey,
      previousKeys,
      supabase,
      roles,
      hasOwner: [...roles.values()].includes("owner"),
      originAudience,
      maxTokenAgeSeconds,
      deviceLoginIntervalSeconds,
    },
  };
}

/** The identity config for this env object, parsed once per env object. */
export const getAuthConfig: (env: object) => AuthConfigResult = perEnv(parseAuthConfig);

/** The role an email holds, or null when it is on no list. */
export function roleFor(auth: AuthConfig, email: string | undefined, granted?: ReadonlyMap<string, Role>): Role | null {
  if (!email) return null;
  const key = email.toLowerCase();
  // Settings win over grants: an owner cannot be demoted, nor a settings entry widened, through the API.
  return auth.roles.get(key) ?? granted?.get(key) ?? null;
}
