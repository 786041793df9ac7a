// The devices signed in to this deployment (CLIs and browsers): created by a login, listed, touched and revoked.
import type { DeviceRecord } from "../../shared/api-types.ts";
import { randomToken, type DeviceRow } from "./schema.ts";

/** What a login knows of a device before it exists. */
export type NewDevice = Omit<DeviceRecord, "id" | "createdAt" | "lastSeenAt" | "revokedAt">;

export class Devices {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  insert(d: NewDevice, now: number): DeviceRecord {
    const device: DeviceRecord = { ...d, id: `dev_${randomToken(12)}`, createdAt: now, lastSeenAt: now, revokedAt: null };
    this.#sql.exec(
      `INSERT INTO devices (id, sub, email, kind, name, hostname, platform, arch, created_at, last_seen_at)
       VALUES (?,?,?,?,?,?,?,?,?,?)`,
      device.id,
      d.sub,
      d.email,
      d.kind,
      d.name,
      d.hostname,
      d.platform,
      d.arch,
      now,
      now,
    );
    return device;
  }

  get(id: string): DeviceRecord | null {
    const row = this.#sql.exec<DeviceRow>("SELECT * FROM devices WHERE id = ?", id).next().value;
    return row ? toDevice(row) : null;
  }

  /** Newest first; one user's devices, or everyone's for null. */
  list(sub: string | null): DeviceRecord[] {
    const cursor = sub
      ? this.#sql.exec<DeviceRow>("SELECT * FROM devices WHERE sub = ? ORDER BY created_at DESC", sub)
      : this.#sql.exec<DeviceRow>("SELECT * FROM devices ORDER BY created_at DESC");
    return cursor.toArray().map(toDevice);
  }

  touch(id: string, now: number): void {
    this.#sql.exec("UPDATE devices SET last_seen_at = ? WHERE id = ?", now, id);
  }

  /** Marks the device revoked (the first reason sticks); its refresh tokens are the caller's to delete. */
  markRevoked(id: string, reason: string, now: number): void {
    this.#sql.exec("UPDATE devices SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL", now, reason, id);
  }
}

function toDevice(row: DeviceRow): DeviceRecord {
  return {
    id: row.id,
    sub: row.sub,
    email: row.email,
    kind: row.kind,
    name: row.name,
    hostname: row.hostname,
    platform: row.platform,
    arch: row.arch,
    createdAt: row.created_at,
    lastSeenAt: row.last_seen_at,
    revokedAt: row.revoked_at,
  };
}
