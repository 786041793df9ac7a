// Rotating refresh tokens: each device holds one live token; presenting a rotated one revokes the device.
import type { DeviceRecord } from "../../shared/api-types.ts";
import type { Devices, NewDevice } from "./devices.ts";
import { randomToken, sha256, type RefreshTokenRow } from "./schema.ts";

export const REFRESH_IDLE_TTL_MS = 30 * 24 * 60 * 60 * 1000;

/** A device and the refresh token it holds: what a login, an enrollment or a refresh hands out. */
export interface Grant {
  device: DeviceRecord;
  refreshToken: string;
}

export type RefreshResult = { ok: true; grant: Grant } | { ok: false; reason: "invalid" | "reused" | "revoked" };

export class RefreshTokens {
  readonly #sql: SqlStorage;
  readonly #devices: Devices;

  constructor(sql: SqlStorage, devices: Devices) {
    this.#sql = sql;
    this.#devices = devices;
  }

  /** A new device with its first refresh token. */
  async grant(d: NewDevice): Promise<Grant> {
    const now = Date.now();
    const device = this.#devices.insert(d, now);
    return { device, refreshToken: await this.#issue(device.id, now) };
  }

  async #issue(deviceId: string, now: number): Promise<string> {
    const token = `opr_${randomToken(32)}`;
    this.#sql.exec(
      "INSERT INTO refresh_tokens (hash, device_id, created_at, expires_at) VALUES (?,?,?,?)",
      await sha256(token),
      deviceId,
      now,
      now + REFRESH_IDLE_TTL_MS,
    );
    return token;
  }

  /** Rotates a refresh token. Presenting one that was already rotated revokes the whole device. */
  async rotate(refreshToken: string): Promise<RefreshResult> {
    const hash = await sha256(refreshToken);
    const row = this.#sql.exec<RefreshTokenRow>("SELECT * FROM refresh_tokens WHERE hash = ?", hash).next().value;
    const now = Date.now();
    if (!row) return { ok: false, reason: "invalid" };
    if (row.rotated_at !== null) {
      this.revokeDevice(row.device_id, "refresh_token_reuse");
      return { ok: false, reason: "reused" };
    }
    const device = this.#devices.get(row.device_id);
    if (!device || device.revokedAt !== null) return { ok: false, reason: "revoked" };
    if (row.expires_at < now) return { ok: false, reason: "invalid" };
    this.#sql.exec("UPDATE refresh_tokens SET rotated_at = ? WHERE hash = ?", now, hash);
    this.#devices.touch(device.id, now);
    const next = await this.#issue(device.id, now);
    return { ok: true, grant: { device: { ...device, lastSeenAt: now }, refreshToken: next } };
  }

  /** Logout: revokes the device the refresh token belongs to; unknown tokens change nothing. */
  async revokeByToken(refreshToken: string): Promise<boolean> {
    const hash = await sha256(refreshToken);
    const row = this.#sql.exec<Pick<RefreshTokenRow, "device_id">>("SELECT device_id FROM refresh_tokens WHERE hash = ?", hash).next().value;
    if (!row) return false;
    this.revokeDevice(row.device_id, "logout");
    return true;
  }

  /** The device stops working at once: it is marked revoked and its tokens are deleted. */
  revokeDevice(deviceId: string, reason: string): void {
    this.#devices.markRevoked(deviceId, reason, Date.now());
    this.#sql.exec("DELETE FROM refresh_tokens WHERE device_id = ?", deviceId);
  }

  prune(now: number): void {
    this.#sql.exec("DELETE FROM refresh_tokens WHERE expires_at < ?", now);
  }
}
