// Rotating refresh tokens: each device holds one live token; presenting a rotated one revokes the device, except for
// one retry within the grace window (refresh-grace.ts) by a client that lost the answer.
import type { DeviceRecord } from "../../shared/api-types.ts";
import type { Devices, NewDevice } from "./devices.ts";
import { RefreshGrace, seal, unseal } from "./refresh-grace.ts";
import { randomToken, sha256, type RefreshTokenRow } from "./schema.ts";

export const REFRESH_IDLE_TTL_MS = 30 * 24 * 60 * 60 * 1000;

/** A device and the refresh token it holds: what a login, an enrollment or a refresh hands out. */
export interface Grant {
  device: DeviceRecord;
  refreshToken: string;
}

export type RefreshResult = { ok: true; grant: Grant; retried: boolean } | { ok: false; reason: "invalid" | "reused" | "revoked" | "wrong_client" };

function newToken(): string {
  return `opr_${randomToken(32)}`;
}

export class RefreshTokens {
  readonly #sql: SqlStorage;
  readonly #devices: Devices;
  readonly #grace: RefreshGrace;

  constructor(sql: SqlStorage, devices: Devices) {
    this.#sql = sql;
    this.#devices = devices;
    this.#grace = new RefreshGrace(sql);
  }

  /** A new device with its first refresh token, bound to the OAuth client that signed in ('' for none). */
  async grant(d: NewDevice, clientId = ""): Promise<Grant> {
    const token = newToken();
    const hash = await sha256(token);
    const now = Date.now();
    const device = this.#devices.insert(d, now);
    this.#insert(hash, device.id, clientId, now);
    return { device, refreshToken: token };
  }

  #insert(hash: string, deviceId: string, clientId: string, now: number): void {
    this.#sql.exec(
      "INSERT INTO refresh_tokens (hash, device_id, created_at, expires_at, client_id) VALUES (?,?,?,?,?)",
      hash,
      deviceId,
      now,
      now + REFRESH_IDLE_TTL_MS,
      clientId,
    );
  }

  #row(hash: string): RefreshTokenRow | null {
    return this.#sql.exec<RefreshTokenRow>("SELECT * FROM refresh_tokens WHERE hash = ?", hash).next().value ?? null;
  }

  /**
   * Rotates a refresh token. A token that was already rotated gets the same successor once within the grace window
   * (while that successor is still unused); any other presentation of it revokes the whole device. `clientId`, when
   * the request names one, must be the client the token was issued to; a mismatch changes nothing.
   */
  async rotate(refreshToken: string, clientId = ""): Promise<RefreshResult> {
    // Every await comes first: from the first read to the last write below, a concurrent rotation of the same token
    // cannot interleave, so it sees the rotation and its sealed successor together or neither.
    const hash = await sha256(refreshToken);
    const next = newToken();
    const nextHash = await sha256(next);
    const sealed = await seal(refreshToken, next, nextHash);

    const row = this.#row(hash);
    const now = Date.now();
    if (!row) return { ok: false, reason: "invalid" };
    if (clientId !== "" && row.client_id !== "" && clientId !== row.client_id) return { ok: false, reason: "wrong_client" };
    if (row.rotated_at !== null) return this.#retry(refreshToken, row, now);
    const device = this.#devices.get(row.device_id);
    if (!device || device.revokedAt !== null) return { ok: false, reason: "revoked" };
    if (row.expires_at < now) return { ok: false, reason: "invalid" };
    this.#sql.exec("UPDATE refresh_tokens SET rotated_at = ? WHERE hash = ?", now, hash);
    this.#devices.touch(device.id, now);
    this.#insert(nextHash, device.id, row.client_id, now);
    this.#grace.record(hash, device.id, nextHash, sealed, now);
    return { ok: true, grant: { device: { ...device, lastSeenAt: now }, refreshToken: next }, retried: false };
  }

  /** A rotated token again: the one retry of the grace window, or a reuse that revokes the device. */
  async #retry(refreshToken: string, row: RefreshTokenRow, now: number): Promise<RefreshResult> {
    const taken = this.#grace.take(row.hash, now);
    const successor = taken ? this.#row(taken.successorHash) : null;
    const device = this.#devices.get(row.device_id);
    const usable = successor && successor.rotated_at === null && successor.expires_at >= now && device && device.revokedAt === null;
    if (!taken || !usable) {
      this.revokeDevice(row.device_id, "refresh_token_reuse");
      return { ok: false, reason: "reused" };
    }
    const token = await unseal(refreshToken, taken.sealed, taken.successorHash);
    if (!token) {
      this.revokeDevice(row.device_id, "refresh_token_reuse");
      return { ok: false, reason: "reused" };
    }
    return { ok: true, grant: { device, refreshToken: token }, retried: true };
  }

  /** The device a refresh token belongs to, revoked as `reason`; null (nothing changed) for an unknown token. */
  async revokeByToken(refreshToken: string, reason: string): Promise<string | null> {
    const hash = await sha256(refreshToken);
    const row = this.#row(hash);
    if (!row) return null;
    this.revokeDevice(row.device_id, reason);
    return row.device_id;
  }

  /** The device stops working at once: it is marked revoked and its tokens (and sealed successors) are deleted. */
  revokeDevice(deviceId: string, reason: string): void {
    this.#devices.markRevoked(deviceId, reason, Date.now());
    this.#sql.exec("DELETE FROM refresh_tokens WHERE device_id = ?", deviceId);
    this.#grace.forgetDevice(deviceId);
  }

  prune(now: number): void {
    this.#sql.exec("DELETE FROM refresh_tokens WHERE expires_at < ?", now);
    this.#grace.prune(now);
  }

  /** When the next sealed successor must go (expired tokens wait for the hourly sweep), or null. */
  nextDue(): number | null {
    return this.#grace.nextDue();
  }
}
