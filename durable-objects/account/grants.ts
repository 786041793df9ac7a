// What the account hands out beyond devices: the access list's grants, and the single-use ids and scoped-access codes.
import { sha256, type CountRow, type GrantRow, type ScopedCodeRow } from "./schema.ts";

export interface GrantRecord {
  email: string;
  role: GrantRow["role"];
  grantedBy: string;
  grantedAt: number;
}

/** Grants an owner may hold through the API; settings are the place for more. */
const MAX_GRANTS = 500;

/** Members and viewers an owner added at runtime (settings-defined roles live in the settings, not here). */
export class Grants {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  list(): GrantRecord[] {
    return this.#sql
      .exec<GrantRow>("SELECT * FROM grants ORDER BY email")
      .toArray()
      .map((r) => ({ email: r.email, role: r.role, grantedBy: r.granted_by, grantedAt: r.granted_at }));
  }

  /** Adds or changes a grant; null when the list is full and the email is new. */
  set(email: string, role: GrantRecord["role"], by: string): GrantRecord | null {
    const exists = this.#sql.exec("SELECT 1 FROM grants WHERE email = ?", email).next().value;
    if (!exists && this.#sql.exec<CountRow>("SELECT COUNT(*) AS n FROM grants").one().n >= MAX_GRANTS) return null;
    const now = Date.now();
    this.#sql.exec(
      "INSERT INTO grants (email, role, granted_by, granted_at) VALUES (?,?,?,?) ON CONFLICT(email) DO UPDATE SET role = excluded.role, granted_by = excluded.granted_by, granted_at = excluded.granted_at",
      email,
      role,
      by,
      now,
    );
    return { email, role, grantedBy: by, grantedAt: now };
  }

  remove(email: string): boolean {
    return this.#sql.exec("DELETE FROM grants WHERE email = ?", email).rowsWritten > 0;
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
