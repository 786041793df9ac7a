// The account's SQLite tables and the row type of each, plus the random tokens and hashes every part stores.
import type { GrantableRole } from "../../shared/identity.ts";
import type { DeviceRecord } from "../../shared/api-types.ts";

export const SCHEMA = `
  CREATE TABLE IF NOT EXISTS device_codes (
    device_code_hash TEXT PRIMARY KEY, user_code TEXT NOT NULL UNIQUE,
    client_name TEXT NOT NULL, hostname TEXT NOT NULL, platform TEXT NOT NULL, arch TEXT NOT NULL,
    ip TEXT NOT NULL, location TEXT NOT NULL,
    created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, interval_s INTEGER NOT NULL,
    last_poll_at INTEGER, status TEXT NOT NULL, approver_sub TEXT, approver_email TEXT);
  CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY, sub TEXT NOT NULL, email TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    hostname TEXT NOT NULL, platform TEXT NOT NULL, arch TEXT NOT NULL,
    created_at INTEGER NOT NULL, last_seen_at INTEGER NOT NULL, revoked_at INTEGER, revoked_reason TEXT);
  CREATE TABLE IF NOT EXISTS refresh_tokens (
    hash TEXT PRIMARY KEY, device_id TEXT NOT NULL, created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL, rotated_at INTEGER);
  CREATE INDEX IF NOT EXISTS refresh_by_device ON refresh_tokens(device_id);
  CREATE TABLE IF NOT EXISTS used_ids (id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS guesses (key TEXT PRIMARY KEY, window_start INTEGER NOT NULL, count INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS scoped_codes (code_hash TEXT PRIMARY KEY, token TEXT NOT NULL, expires_at INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS grants (email TEXT PRIMARY KEY, role TEXT NOT NULL, granted_by TEXT NOT NULL, granted_at INTEGER NOT NULL,
    expires_at INTEGER);
`;

export type DeviceCodeRow = {
  device_code_hash: string;
  user_code: string;
  client_name: string;
  hostname: string;
  platform: string;
  arch: string;
  ip: string;
  location: string;
  created_at: number;
  expires_at: number;
  interval_s: number;
  last_poll_at: number | null;
  status: "pending" | "approved" | "denied" | "consumed";
  approver_sub: string | null;
  approver_email: string | null;
};

export type GuessRow = { window_start: number; count: number };

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

export type RefreshTokenRow = { hash: string; device_id: string; created_at: number; expires_at: number; rotated_at: number | null };

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
