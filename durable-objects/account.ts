// The account's identity state at the edge: device-code logins, devices, rotating refresh tokens, single-use ids.
import { DurableObject } from "cloudflare:workers";
import type { DeviceRecord } from "../shared/api-types.ts";

export const DEVICE_CODE_TTL_S = 600;
export const DEVICE_POLL_INTERVAL_S = 5;
export const REFRESH_IDLE_TTL_MS = 30 * 24 * 60 * 60 * 1000;
/** Wrong user codes allowed per user, and across all users, in one window. */
export const GUESS_LIMIT_PER_USER = 10;
export const GUESS_LIMIT_GLOBAL = 100;
export const GUESS_WINDOW_MS = 15 * 60 * 1000;
const CLEANUP_EVERY_MS = 60 * 60 * 1000;

// RFC 8628 §6.1: consonants only, so no words and no confusable 0/O or 1/I.
const USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ";

export interface ClientInfo {
  clientName: string;
  hostname: string;
  platform: string;
  arch: string;
  ip: string;
  location: string;
}

export type { DeviceRecord };

export interface Grant {
  device: DeviceRecord;
  refreshToken: string;
}

export type PollResult =
  | { status: "authorization_pending" | "slow_down" | "access_denied" | "expired_token" | "invalid_grant"; interval?: number }
  | { status: "approved"; grant: Grant };

export type LookupResult =
  | { ok: true; request: ClientInfo & { userCode: string; createdAt: number; expiresAt: number } }
  | { ok: false; reason: "not_found" | "rate_limited" };

export interface GrantRecord {
  email: string;
  role: "member" | "viewer";
  grantedBy: string;
  grantedAt: number;
}

/** Grants an owner may hold through the API; settings are the place for more. */
export const MAX_GRANTS = 500;

export type RefreshResult = { ok: true; grant: Grant } | { ok: false; reason: "invalid" | "reused" | "revoked" };

type Row = Record<string, SqlStorageValue>;

function randomToken(bytes: number): string {
  const buf = crypto.getRandomValues(new Uint8Array(bytes));
  return btoa(String.fromCharCode(...buf)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

/** Uppercases and drops separators; null unless exactly eight letters from the user-code alphabet remain. */
export function normalizeUserCode(input: string): string | null {
  const code = input.toUpperCase().replace(/[\s-]/g, "");
  if (code.length !== 8) return null;
  for (const ch of code) if (!USER_CODE_ALPHABET.includes(ch)) return null;
  return code;
}

function newUserCode(): string {
  // 256 is a multiple of 64, not of 20: reject the top values so every letter is equally likely.
  const out: string[] = [];
  while (out.length < 8) {
    for (const b of crypto.getRandomValues(new Uint8Array(16))) {
      if (b < 240 && out.length < 8) out.push(USER_CODE_ALPHABET[b % 20]!);
    }
  }
  return out.join("");
}

export class AccountDO extends DurableObject<Env> {
  #sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#sql.exec(`
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
      CREATE TABLE IF NOT EXISTS grants (email TEXT PRIMARY KEY, role TEXT NOT NULL, granted_by TEXT NOT NULL, granted_at INTEGER NOT NULL);
    `);
  }

  #one(query: string, ...params: SqlStorageValue[]): Row | null {
    return this.#sql.exec<Row>(query, ...params).toArray()[0] ?? null;
  }

  async #scheduleCleanup(): Promise<void> {
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(Date.now() + CLEANUP_EVERY_MS);
  }

  /** Deletes what has expired; safe to run any number of times. */
  override async alarm(): Promise<void> {
    const now = Date.now();
    this.#sql.exec("DELETE FROM device_codes WHERE expires_at < ?", now - 24 * 60 * 60 * 1000);
    this.#sql.exec("DELETE FROM used_ids WHERE expires_at < ?", now);
    this.#sql.exec("DELETE FROM scoped_codes WHERE expires_at < ?", now);
    this.#sql.exec("DELETE FROM refresh_tokens WHERE expires_at < ?", now);
    this.#sql.exec("DELETE FROM guesses WHERE window_start < ?", now - GUESS_WINDOW_MS);
    await this.ctx.storage.setAlarm(now + CLEANUP_EVERY_MS);
  }

  async createDeviceCode(client: ClientInfo): Promise<{ deviceCode: string; userCode: string; expiresIn: number; interval: number }> {
    const deviceCode = randomToken(32);
    const now = Date.now();
    let userCode = newUserCode();
    while (this.#one("SELECT 1 FROM device_codes WHERE user_code = ?", userCode)) userCode = newUserCode();
    this.#sql.exec(
      `INSERT INTO device_codes (device_code_hash, user_code, client_name, hostname, platform, arch, ip, location,
        created_at, expires_at, interval_s, status) VALUES (?,?,?,?,?,?,?,?,?,?,?, 'pending')`,
      await sha256(deviceCode), userCode, client.clientName, client.hostname, client.platform, client.arch,
      client.ip, client.location, now, now + DEVICE_CODE_TTL_S * 1000, DEVICE_POLL_INTERVAL_S,
    );
    await this.#scheduleCleanup();
    return { deviceCode, userCode, expiresIn: DEVICE_CODE_TTL_S, interval: DEVICE_POLL_INTERVAL_S };
  }

  async pollDeviceCode(deviceCode: string): Promise<PollResult> {
    const hash = await sha256(deviceCode);
    const row = this.#one("SELECT * FROM device_codes WHERE device_code_hash = ?", hash);
    if (!row) return { status: "invalid_grant" };
    const now = Date.now();
    if (row.status === "consumed") return { status: "invalid_grant" };
    if ((row.expires_at as number) < now) return { status: "expired_token" };
    const interval = row.interval_s as number;
    const last = row.last_poll_at as number | null;
    // A small allowance for network jitter; anything faster than the interval slows the client down by 5 s.
    if (last !== null && now - last < interval * 1000 - 250) {
      this.#sql.exec("UPDATE device_codes SET interval_s = ?, last_poll_at = ? WHERE device_code_hash = ?", interval + 5, now, hash);
      return { status: "slow_down", interval: interval + 5 };
    }
    this.#sql.exec("UPDATE device_codes SET last_poll_at = ? WHERE device_code_hash = ?", now, hash);
    if (row.status === "denied") return { status: "access_denied" };
    if (row.status === "pending") return { status: "authorization_pending", interval };
    this.#sql.exec("UPDATE device_codes SET status = 'consumed' WHERE device_code_hash = ?", hash);
    const grant = await this.#createDevice({
      sub: row.approver_sub as string,
      email: row.approver_email as string,
      kind: "cli",
      name: row.client_name as string,
      hostname: row.hostname as string,
      platform: row.platform as string,
      arch: row.arch as string,
    });
    return { status: "approved", grant };
  }

  /** Counts a wrong user code against the user and everyone; true while both are under their caps. */
  #underGuessCap(sub: string, record: boolean): boolean {
    const now = Date.now();
    let ok = true;
    for (const [key, limit] of [[`user:${sub}`, GUESS_LIMIT_PER_USER], ["global", GUESS_LIMIT_GLOBAL]] as const) {
      const row = this.#one("SELECT window_start, count FROM guesses WHERE key = ?", key);
      const fresh = !row || (row.window_start as number) < now - GUESS_WINDOW_MS;
      const count = fresh ? 0 : (row.count as number);
      if (count >= limit) ok = false;
      if (record) {
        this.#sql.exec(
          "INSERT INTO guesses (key, window_start, count) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET window_start = excluded.window_start, count = excluded.count",
          key, fresh ? now : (row!.window_start as number), count + 1,
        );
      }
    }
    return ok;
  }

  async lookupUserCode(userCode: string, approverSub: string): Promise<LookupResult> {
    if (!this.#underGuessCap(approverSub, false)) return { ok: false, reason: "rate_limited" };
    const code = normalizeUserCode(userCode);
    const row = code ? this.#one("SELECT * FROM device_codes WHERE user_code = ? AND status = 'pending' AND expires_at > ?", code, Date.now()) : null;
    if (!row) {
      this.#underGuessCap(approverSub, true);
      return { ok: false, reason: "not_found" };
    }
    return {
      ok: true,
      request: {
        userCode: `${code!.slice(0, 4)}-${code!.slice(4)}`,
        clientName: row.client_name as string,
        hostname: row.hostname as string,
        platform: row.platform as string,
        arch: row.arch as string,
        ip: row.ip as string,
        location: row.location as string,
        createdAt: row.created_at as number,
        expiresAt: row.expires_at as number,
      },
    };
  }

  async decideUserCode(userCode: string, approver: { sub: string; email: string }, approve: boolean): Promise<LookupResult> {
    const found = await this.lookupUserCode(userCode, approver.sub);
    if (!found.ok) return found;
    this.#sql.exec(
      "UPDATE device_codes SET status = ?, approver_sub = ?, approver_email = ? WHERE user_code = ? AND status = 'pending'",
      approve ? "approved" : "denied", approver.sub, approver.email, normalizeUserCode(userCode),
    );
    return found;
  }

  async #createDevice(d: Omit<DeviceRecord, "id" | "createdAt" | "lastSeenAt" | "revokedAt">): Promise<Grant> {
    const now = Date.now();
    const device: DeviceRecord = { ...d, id: `dev_${randomToken(12)}`, createdAt: now, lastSeenAt: now, revokedAt: null };
    this.#sql.exec(
      `INSERT INTO devices (id, sub, email, kind, name, hostname, platform, arch, created_at, last_seen_at)
       VALUES (?,?,?,?,?,?,?,?,?,?)`,
      device.id, d.sub, d.email, d.kind, d.name, d.hostname, d.platform, d.arch, now, now,
    );
    const refreshToken = await this.#issueRefresh(device.id, now);
    await this.#scheduleCleanup();
    return { device, refreshToken };
  }

  async #issueRefresh(deviceId: string, now: number): Promise<string> {
    const token = `opr_${randomToken(32)}`;
    this.#sql.exec(
      "INSERT INTO refresh_tokens (hash, device_id, created_at, expires_at) VALUES (?,?,?,?)",
      await sha256(token), deviceId, now, now + REFRESH_IDLE_TTL_MS,
    );
    return token;
  }

  /** Rotates a refresh token. Presenting one that was already rotated revokes the whole device. */
  async refresh(refreshToken: string): Promise<RefreshResult> {
    const hash = await sha256(refreshToken);
    const row = this.#one("SELECT * FROM refresh_tokens WHERE hash = ?", hash);
    const now = Date.now();
    if (!row) return { ok: false, reason: "invalid" };
    const deviceId = row.device_id as string;
    if (row.rotated_at !== null) {
      this.#revoke(deviceId, "refresh_token_reuse");
      return { ok: false, reason: "reused" };
    }
    const device = this.#device(deviceId);
    if (!device || device.revokedAt !== null) return { ok: false, reason: "revoked" };
    if ((row.expires_at as number) < now) return { ok: false, reason: "invalid" };
    this.#sql.exec("UPDATE refresh_tokens SET rotated_at = ? WHERE hash = ?", now, hash);
    this.#sql.exec("UPDATE devices SET last_seen_at = ? WHERE id = ?", now, deviceId);
    const next = await this.#issueRefresh(deviceId, now);
    return { ok: true, grant: { device: { ...device, lastSeenAt: now }, refreshToken: next } };
  }

  /** Logout: revokes the device the refresh token belongs to; unknown tokens change nothing. */
  async revokeByRefresh(refreshToken: string): Promise<boolean> {
    const row = this.#one("SELECT device_id FROM refresh_tokens WHERE hash = ?", await sha256(refreshToken));
    if (!row) return false;
    this.#revoke(row.device_id as string, "logout");
    return true;
  }

  #revoke(deviceId: string, reason: string): void {
    this.#sql.exec("UPDATE devices SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL", Date.now(), reason, deviceId);
    this.#sql.exec("DELETE FROM refresh_tokens WHERE device_id = ?", deviceId);
  }

  #device(id: string): DeviceRecord | null {
    const row = this.#one("SELECT * FROM devices WHERE id = ?", id);
    return row ? toDevice(row) : null;
  }

  async revokeDevice(id: string): Promise<DeviceRecord | null> {
    if (!this.#device(id)) return null;
    this.#revoke(id, "revoked");
    return this.#device(id);
  }

  async getDevice(id: string): Promise<DeviceRecord | null> {
    return this.#device(id);
  }

  async listDevices(sub: string | null): Promise<DeviceRecord[]> {
    const rows = sub
      ? this.#sql.exec<Row>("SELECT * FROM devices WHERE sub = ? ORDER BY created_at DESC", sub).toArray()
      : this.#sql.exec<Row>("SELECT * FROM devices ORDER BY created_at DESC").toArray();
    return rows.map(toDevice);
  }

  /** Records a single-use id (enrollment link, WebSocket ticket); false when it was used before. */
  async consumeOnce(id: string, expiresAtMs: number): Promise<boolean> {
    const cursor = this.#sql.exec("INSERT INTO used_ids (id, expires_at) VALUES (?, ?) ON CONFLICT(id) DO NOTHING", id, expiresAtMs);
    await this.#scheduleCleanup();
    return cursor.rowsWritten > 0;
  }

  /** Enrollment: a single-use link becomes a browser device with its own refresh token. */
  async enroll(jti: string, expiresAtMs: number, who: { sub: string; email: string; name: string; platform: string }): Promise<Grant | null> {
    if (!(await this.consumeOnce(`enroll:${jti}`, expiresAtMs))) return null;
    return this.#createDevice({ sub: who.sub, email: who.email, kind: "browser", name: who.name, hostname: "", platform: who.platform, arch: "" });
  }

  async listGrants(): Promise<GrantRecord[]> {
    return this.#sql
      .exec<Row>("SELECT * FROM grants ORDER BY email")
      .toArray()
      .map((r) => ({ email: r.email as string, role: r.role as GrantRecord["role"], grantedBy: r.granted_by as string, grantedAt: r.granted_at as number }));
  }

  /** Adds or changes a grant; null when the list is full and the email is new. */
  async setGrant(email: string, role: GrantRecord["role"], by: string): Promise<GrantRecord | null> {
    const exists = this.#one("SELECT 1 FROM grants WHERE email = ?", email);
    const count = this.#one("SELECT COUNT(*) AS n FROM grants")!.n as number;
    if (!exists && count >= MAX_GRANTS) return null;
    const now = Date.now();
    this.#sql.exec(
      "INSERT INTO grants (email, role, granted_by, granted_at) VALUES (?,?,?,?) ON CONFLICT(email) DO UPDATE SET role = excluded.role, granted_by = excluded.granted_by, granted_at = excluded.granted_at",
      email, role, by, now,
    );
    return { email, role, grantedBy: by, grantedAt: now };
  }

  async removeGrant(email: string): Promise<boolean> {
    return this.#sql.exec("DELETE FROM grants WHERE email = ?", email).rowsWritten > 0;
  }

  async storeScopedCode(code: string, token: string, expiresAtMs: number): Promise<void> {
    this.#sql.exec("INSERT INTO scoped_codes (code_hash, token, expires_at) VALUES (?,?,?)", await sha256(code), token, expiresAtMs);
    await this.#scheduleCleanup();
  }

  async redeemScopedCode(code: string): Promise<string | null> {
    const hash = await sha256(code);
    const row = this.#one("SELECT token, expires_at FROM scoped_codes WHERE code_hash = ?", hash);
    if (!row) return null;
    this.#sql.exec("DELETE FROM scoped_codes WHERE code_hash = ?", hash);
    return (row.expires_at as number) > Date.now() ? (row.token as string) : null;
  }
}

function toDevice(row: Row): DeviceRecord {
  return {
    id: row.id as string,
    sub: row.sub as string,
    email: row.email as string,
    kind: row.kind as DeviceRecord["kind"],
    name: row.name as string,
    hostname: row.hostname as string,
    platform: row.platform as string,
    arch: row.arch as string,
    createdAt: row.created_at as number,
    lastSeenAt: row.last_seen_at as number,
    revokedAt: (row.revoked_at as number | null) ?? null,
  };
}
