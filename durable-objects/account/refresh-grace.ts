// The grace window of refresh rotation: a client that lost the answer may present the old token once more within
// 30 s and get the same new refresh token, which is kept only sealed under a key that the old token alone derives.
import { sha256, type RefreshGraceRow } from "./schema.ts";

export const REFRESH_GRACE_MS = 30_000;

const ENCODER = new TextEncoder();
const SALT = ENCODER.encode("outpost refresh grace v1");

/**
 * AES-256-GCM key from the old refresh token (HKDF-SHA256). The tables store SHA-256 of the old token, which does not
 * give this key: reading the storage opens no sealed token; only the holder of the old token can.
 */
async function keyOf(oldToken: string, usage: "encrypt" | "decrypt"): Promise<CryptoKey> {
  const ikm = await crypto.subtle.importKey("raw", ENCODER.encode(oldToken), "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey({ name: "HKDF", hash: "SHA-256", salt: SALT, info: new Uint8Array() }, ikm, { name: "AES-GCM", length: 256 }, false, [usage]);
}

function toBase64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(atob(text), (ch) => ch.charCodeAt(0));
}

/** `successor` sealed for whoever holds `oldToken`, bound to the successor's hash. */
export async function seal(oldToken: string, successor: string, successorHash: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const key = await keyOf(oldToken, "encrypt");
  const box = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: ENCODER.encode(successorHash) }, key, ENCODER.encode(successor));
  return `${toBase64(iv)}.${toBase64(new Uint8Array(box))}`;
}

/** The sealed successor, or null when it does not open with `oldToken` or is not the token it claims to be. */
export async function unseal(oldToken: string, sealed: string, successorHash: string): Promise<string | null> {
  const [iv, box] = sealed.split(".");
  if (!iv || !box) return null;
  try {
    const key = await keyOf(oldToken, "decrypt");
    const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv: fromBase64(iv), additionalData: ENCODER.encode(successorHash) }, key, fromBase64(box));
    const successor = new TextDecoder().decode(plain);
    return (await sha256(successor)) === successorHash ? successor : null;
  } catch {
    return null;
  }
}

/** The sealed successors of recently rotated tokens. Every method is synchronous, so callers can keep a rotation atomic. */
export class RefreshGrace {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  record(oldHash: string, deviceId: string, successorHash: string, sealed: string, now: number): void {
    this.#sql.exec(
      "INSERT OR REPLACE INTO refresh_grace (hash, device_id, successor_hash, sealed, expires_at, retried_at) VALUES (?,?,?,?,?, NULL)",
      oldHash,
      deviceId,
      successorHash,
      sealed,
      now + REFRESH_GRACE_MS,
    );
  }

  /**
   * The one retry of `oldHash` within the window: its sealed successor, which is wiped as it is taken (the row stays
   * until the window ends, so a second retry is seen as the reuse it is). Null when there is no retry left.
   */
  take(oldHash: string, now: number): { sealed: string; successorHash: string } | null {
    const row = this.#sql.exec<RefreshGraceRow>("SELECT * FROM refresh_grace WHERE hash = ?", oldHash).next().value;
    if (!row || row.retried_at !== null || row.expires_at <= now) return null;
    this.#sql.exec("UPDATE refresh_grace SET retried_at = ?, sealed = '' WHERE hash = ?", now, oldHash);
    return { sealed: row.sealed, successorHash: row.successor_hash };
  }

  forgetDevice(deviceId: string): void {
    this.#sql.exec("DELETE FROM refresh_grace WHERE device_id = ?", deviceId);
  }

  prune(now: number): void {
    this.#sql.exec("DELETE FROM refresh_grace WHERE expires_at <= ?", now);
  }

  /** When the next sealed token must be deleted, or null when none is kept. */
  nextDue(): number | null {
    return this.#sql.exec<{ at: number | null }>("SELECT MIN(expires_at) AS at FROM refresh_grace").one().at;
  }
}
