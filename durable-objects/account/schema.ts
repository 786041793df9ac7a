// The account's SQLite tables and the row type of each, plus the random tokens and hashes every part stores.
import type { GrantableRole } from "../../shared/identity.ts";
import type { DeviceRecord } from "../../shared/api-types.ts";

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS device_codes (
    device_code_hash TEXT PRIMARY KEY, user_code TEXT NOT NULL UNIQUE,
    client_name TEXT NOT NULL, hostname TEXT NOT NULL, platform TEXT NOT NULL, arch TEXT NOT NULL,
    ip TEXT NOT NULL, location TEXT NOT NULL,
    country TEXT NOT NULL DEFAULT '', city TEXT NOT NULL DEFAULT '', asn INTEGER, as_org TEXT NOT NULL DEFAULT '',
    via_link INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, interval_s INTEGER NOT NULL,
    last_poll_at INTEGER, status TEXT NOT NULL, approver_sub TEXT, approver_email TEXT,
    client_id TEXT NOT NULL DEFAULT '');
  CREATE INDEX IF NOT EXISTS device_codes_by_expiry ON device_codes(expires_at);
  CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY, sub TEXT NOT NULL, email TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    hostname TEXT NOT NULL, platform TEXT NOT NULL, arch TEXT NOT NULL,
    created_at INTEGER NOT NULL, last_seen_at INTEGER NOT NULL, revoked_at INTEGER, revoked_reason TEXT);
  CREATE TABLE IF NOT EXISTS refresh_tokens (
    hash TEXT PRIMARY KEY, device_id TEXT NOT NULL, created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL, rotated_at INTEGER, client_id TEXT NOT NULL DEFAULT '');
  CREATE INDEX IF NOT EXISTS refresh_by_device ON refresh_tokens(device_id);
  CREATE TABLE IF NOT EXISTS refresh_grace (
    hash TEXT PRIMARY KEY, device_id TEXT NOT NULL, successor_hash TEXT NOT NULL, sealed TEXT NOT NULL,
    expires_at INTEGER NOT NULL, retried_at INTEGER);
  CREATE TABLE IF NOT EXISTS used_ids (id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS guesses (key TEXT PRIMARY KEY, window_start INTEGER NOT NULL, count INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS scoped_codes (code_hash TEXT PRIMARY KEY, token TEXT NOT NULL, expires_at INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS grants (email TEXT PRIMARY KEY, role TEXT NOT NULL, granted_by TEXT NOT NULL, granted_at INTEGER NOT NULL,
    expires_at INTEGER);
`;

/**
 * Columns added after their table was first shipped: CREATE TABLE IF NOT EXISTS leaves an existing table as it was, so
 * an account created before gets them here, once. Each definition must have a default or allow NULL (SQLite's rule for ADD COLUMN).
 */
const ADDED_COLUMNS: readonly [table: string, column: string, definition: string][] = [
  ["device_codes", "country", "TEXT NOT NULL DEFAULT ''"],
  ["device_codes", "city", "TEXT NOT NULL DEFAULT ''"],
  ["device_codes", "asn", "INTEGER"],
  ["device_codes", "as_org", "TEXT NOT NULL DEFAULT ''"],
  ["device_codes", "via_link", "INTEGER NOT NULL DEFAULT 0"],
  // NULL: grants made before grants could end never end.
  ["grants", "expires_at", "INTEGER"],
  ["device_codes", "client_id", "TEXT NOT NULL DEFAULT ''"],
  ["refresh_tokens", "client_id", "TEXT NOT NULL DEFAULT ''"],
];

/** Creates the tables, and adds to existing ones the columns they lack; safe to run on every start. */
export function migrate(sql: SqlStorage): void {
  sql.exec(SCHEMA);
  for (const [table, column, definition] of ADDED_COLUMNS) {
    const present = sql.exec<{ name: string }>(`SELECT name FROM pragma_table_info('${table}') WHERE name = ?`, column).toArray();
    if (present.length === 0) sql.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${definition}`);
  }
}

export type DeviceCodeRow = {
  device_code_hash: string;
  user_code: string;
  client_name: string;
  hostname: string;
  platform: string;
  arch: string;
  ip: string;
  location: string;
  /** Where the edge saw the computer's request come from (Cloudflare's geolocation), "" when unknown. */
  country: string;
  city: string;
  asn: number | null;
  as_org: string;
  /** 1 once the code was opened from a link (verification_uri_complete): approving it then needs the code typed. */
  via_link: number;
  created_at: number;
  expires_at: number;
  interval_s: number;
  last_poll_at: number | null;
  status: "pending" | "approved" | "denied" | "consumed";
  approver_sub: string | null;
  approver_email: string | null;
  /** The OAuth client_id that asked for the code; the token request must name the same one. */
  client_id: string;
};

export type GuessRow = { key: string; window_start: number; count: number };

export type RefreshGraceRow = {
  hash: string;
  device_id: string;
  successor_hash: string;
  sealed: string;
  expires_at: number;
  retried_at: number | null;
};

export type DeviceRow = {
  id: string;
  sub: string;
  email: string;
  kind: DeviceRecord["kind"];
  name: string;
  hostname: string;
  platform: string;
  arch: string;
  created_at: number;
  last_seen_at: number;
  revoked_at: number | null;
  revoked_reason: string | null;
};

export type RefreshTokenRow = {
  hash: string;
  device_id: string;
  created_at: number;
  expires_at: number;
  rotated_at: number | null;
  /** The OAuth client the device signed in with, carried through rotations ('' for browsers and older tokens). */
  client_id: string;
};

/** `expires_at`: when the grant ends (ms since the epoch), null when it does not. */
export type GrantRow = { email: string; role: GrantableRole; granted_by: string; granted_at: number; expires_at: number | null };

export type ScopedCodeRow = { token: string; expires_at: number };

export type CountRow = { n: number };

export function randomToken(bytes: number): string {
  const buf = crypto.getRandomValues(new Uint8Array(bytes));
  return btoa(String.fromCharCode(...buf))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

export async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}
