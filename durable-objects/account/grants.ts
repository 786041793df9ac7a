// What the account hands out beyond devices: the access list's grants (which may end), and the single-use ids and scoped-access codes.
import { sha256, type CountRow, type GrantRow, type ScopedCodeRow } from "./schema.ts";

export interface GrantRecord {
  email: string;
  role: GrantRow["role"];
  grantedBy: string;
  grantedAt: number;
  /** When the grant ends (ms since the epoch); null: it does not. */
  expiresAt: number | null;
}

/** Grants an owner may hold through the API; settings are the place for more. */
const MAX_GRANTS = 500;
const LIVE = "(expires_at IS NULL OR expires_at > ?)";

const record = (r: GrantRow): GrantRecord => ({ email: r.email, role: r.role, grantedBy: r.granted_by, grantedAt: r.granted_at, expiresAt: r.expires_at });

/**
 * Members and viewers an owner added at runtime (settings-defined roles live in the settings, not here). A grant past
 * its expiry is never listed or counted, whether or not the alarm has deleted its row yet.
 */
export class Grants {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  list(now = Date.now()): GrantRecord[] {
    return this.#sql.exec<GrantRow>(`SELECT * FROM grants WHERE ${LIVE} ORDER BY email`, now).toArray().map(record);
  }

  /** Adds or replaces a grant (role and expiry both); null when the list is full and the email is new. */
  set(email: string, role: GrantRecord["role"], by: string, expiresAt: number | null): GrantRecord | null {
    const now = Date.now();
    const live = this.#sql.exec(`SELECT 1 FROM grants WHERE email = ? AND ${LIVE}`, email, now).next().value;
    if (!live && this.#sql.exec<CountRow>(`SELECT COUNT(*) AS n FROM grants WHERE ${LIVE}`, now).one().n >= MAX_GRANTS) return null;
    this.#sql.exec(
      "INSERT INTO grants (email, role, granted_by, granted_at, expires_at) VALUES (?,?,?,?,?) ON CONFLICT(email) DO UPDATE SET role = excluded.role, granted_by = excluded.granted_by, granted_at = excluded.granted_at, expires_at = excluded.expires_at",
      email,
      role,
      by,
      now,
      expiresAt,
    );
    return { email, role, grantedBy: by, grantedAt: now, expiresAt };
  }

  /** Removes a grant; false when there was none still running. */
  remove(email: string): boolean {
    const removed = this.#sql.exec<Pick<GrantRow, "expires_at">>("DELETE FROM grants WHERE email = ? RETURNING expires_at", email).toArray();
    const now = Date.now();
    return removed.some((r) => r.expires_at === null || r.expires_at > now);
  }

  /** When the next grant ends, for the alarm; null when none will. */
  nextExpiry(): number | null {
    return this.#sql.exec<{ at: number | null }>("SELECT MIN(expires_at) AS at FROM grants").one().at;
  }

  /** Deletes the grants that have ended; safe to run any number of times. */
  prune(now: number): void {
    this.#sql.exec("DELETE FROM grants WHERE expires_at <= ?", now);
  }
}

/** Ids and codes that work once: enrollment links, WebSocket tickets, and the codes that open scoped access. */
export class SingleUse {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  /** Records a single-use id; false when it was used before. */
  consume(id: string, expiresAtMs: number): boolean {
    return this.#sql.exec("INSERT INTO used_ids (id, expires_at) VALUES (?, ?) ON CONFLICT(id) DO NOTHING", id, expiresAtMs).rowsWritten > 0;
  }

  async storeScopedCode(code: string, token: string, expiresAtMs: number): Promise<void> {
    this.#sql.exec("INSERT INTO scoped_codes (code_hash, token, expires_at) VALUES (?,?,?)", await sha256(code), token, expiresAtMs);
  }

  /** The token a scoped code stands for, once; null for an unknown, used or expired code. */
  async redeemScopedCode(code: string): Promise<string | null> {
    const hash = await sha256(code);
    const row = this.#sql.exec<ScopedCodeRow>("SELECT token, expires_at FROM scoped_codes WHERE code_hash = ?", hash).next().value;
    if (!row) return null;
    this.#sql.exec("DELETE FROM scoped_codes WHERE code_hash = ?", hash);
    return row.expires_at > Date.now() ? row.token : null;
  }

  prune(now: number): void {
    this.#sql.exec("DELETE FROM used_ids WHERE expires_at < ?", now);
    this.#sql.exec("DELETE FROM scoped_codes WHERE expires_at < ?", now);
  }
}
