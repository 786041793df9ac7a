// Device-code login (RFC 8628): codes for a CLI to poll with, the phone's lookup and decision, and expiry.
import type { LoginRequest } from "../../shared/identity.ts";
import { GuessLimits } from "./guess-limits.ts";
import type { Grant, RefreshTokens } from "./refresh-tokens.ts";
import { randomToken, sha256, type DeviceCodeRow } from "./schema.ts";

export const DEVICE_CODE_TTL_S = 600;
/**
 * A code's row stays this long past its expiry, so a late poll still gets expired_token rather than invalid_grant;
 * then the account's alarm deletes it (anyone can create codes, so they must not pile up).
 */
export const KEEP_EXPIRED_MS = 10 * 60 * 1000;

// RFC 8628 §6.1: consonants only, so no words and no confusable 0/O or 1/I.
const USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ";

/** What /auth/device/code records: the request as the approver will see it (shared LoginRequest), and its client_id. */
export type ClientInfo = Omit<LoginRequest, "userCode" | "createdAt" | "expiresAt"> & {
  /** The OAuth client_id the code is issued to; polls must name it. */
  clientId: string;
};

/** How the approver came by the code: typed by hand, or opened from a link (verification_uri_complete, RFC 8628 §3.3.1). */
export type CodeSource = "typed" | "link";

export type PollResult =
  | { status: "authorization_pending" | "slow_down"; interval: number }
  | { status: "access_denied" | "expired_token" | "invalid_grant" | "wrong_client" }
  | { status: "approved"; grant: Grant };

export type LookupResult =
  | {
      ok: true;
      request: LoginRequest;
      /** "second_half": the code was opened from a link, so approving it needs `confirm` (RFC 8628 §5.4). */
      confirmation: "none" | "second_half";
    }
  | { ok: false; reason: "not_found" | "rate_limited" | "confirmation_required" | "confirmation_mismatch" };

/** Uppercases and drops separators; null unless exactly eight letters from the user-code alphabet remain. */
function normalizeUserCode(input: string): string | null {
  const code = input.toUpperCase().replace(/[\s-]/g, "");
  if (code.length !== 8) return null;
  for (const ch of code) if (!USER_CODE_ALPHABET.includes(ch)) return null;
  return code;
}

/** Whether `typed` is the code's second half or the whole code (case, spaces and dashes aside). */
function confirms(code: string, typed: string): boolean {
  const letters = typed.toUpperCase().replace(/[\s-]/g, "");
  return letters.length === 4 ? letters === code.slice(4) : letters === code;
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

export class DeviceLogins {
  readonly #sql: SqlStorage;
  readonly #tokens: RefreshTokens;
  readonly #guesses: GuessLimits;

  constructor(sql: SqlStorage, tokens: RefreshTokens) {
    this.#sql = sql;
    this.#tokens = tokens;
    this.#guesses = new GuessLimits(sql);
  }

  #byHash(hash: string): DeviceCodeRow | null {
    return this.#sql.exec<DeviceCodeRow>("SELECT * FROM device_codes WHERE device_code_hash = ?", hash).next().value ?? null;
  }

  /** A new login; the client is told to poll every `intervalS` seconds. */
  async create(client: ClientInfo, intervalS: number): Promise<{ deviceCode: string; userCode: string; expiresIn: number; interval: number }> {
    const deviceCode = randomToken(32);
    const now = Date.now();
    let userCode = newUserCode();
    while (this.#sql.exec("SELECT 1 FROM device_codes WHERE user_code = ?", userCode).next().value) userCode = newUserCode();
    this.#sql.exec(
      `INSERT INTO device_codes (device_code_hash, user_code, client_id, client_name, hostname, platform, arch, ip, location,
        country, city, asn, as_org, created_at, expires_at, interval_s, status) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?, 'pending')`,
      await sha256(deviceCode),
      userCode,
      client.clientId,
      client.clientName,
      client.hostname,
      client.platform,
      client.arch,
      client.ip,
      client.location,
      client.country,
      client.city,
      client.asn,
      client.asOrganization,
      now,
      now + DEVICE_CODE_TTL_S * 1000,
      intervalS,
    );
    return { deviceCode, userCode, expiresIn: DEVICE_CODE_TTL_S, interval: intervalS };
  }

  /** One poll of the token endpoint. A poll naming another client changes nothing, not even the poll clock. */
  async poll(deviceCode: string, clientId: string): Promise<PollResult> {
    const hash = await sha256(deviceCode);
    const row = this.#byHash(hash);
    if (!row || row.status === "consumed") return { status: "invalid_grant" };
    // Codes from before client ids were recorded ('') are bound to none.
    if (row.client_id !== "" && row.client_id !== clientId) return { status: "wrong_client" };
    const now = Date.now();
    if (row.expires_at < now) return { status: "expired_token" };
    const interval = row.interval_s;
    const last = row.last_poll_at;
    // A small allowance for network jitter; anything faster than the interval slows the client down by 5 s.
    if (last !== null && now - last < interval * 1000 - 250) {
      this.#sql.exec("UPDATE device_codes SET interval_s = ?, last_poll_at = ? WHERE device_code_hash = ?", interval + 5, now, hash);
      return { status: "slow_down", interval: interval + 5 };
    }
    this.#sql.exec("UPDATE device_codes SET last_poll_at = ? WHERE device_code_hash = ?", now, hash);
    if (row.status === "denied") return { status: "access_denied" };
    // An approval always names its approver; without one the login is still waiting.
    if (row.status === "pending" || row.approver_sub === null || row.approver_email === null) return { status: "authorization_pending", interval };
    this.#sql.exec("UPDATE device_codes SET status = 'consumed' WHERE device_code_hash = ?", hash);
    const grant = await this.#tokens.grant(
      {
        sub: row.approver_sub,
        email: row.approver_email,
        kind: "cli",
        name: row.client_name,
        hostname: row.hostname,
        platform: row.platform,
        arch: row.arch,
      },
      row.client_id,
    );
    return { status: "approved", grant };
  }

  /**
   * The pending request behind a user code; `network` is the approver's IPv4 address or IPv6 /64, for the per-network
   * guess cap. Opened from a link (`source` "link"), the code needs confirming from then on.
   */
  async lookup(userCode: string, approverSub: string, network: string, source: CodeSource = "typed"): Promise<LookupResult> {
    const now = Date.now();
    if (!this.#guesses.allowed(approverSub, network, now)) return { ok: false, reason: "rate_limited" };
    const code = normalizeUserCode(userCode);
    const row = code
      ? this.#sql.exec<DeviceCodeRow>("SELECT * FROM device_codes WHERE user_code = ? AND status = 'pending' AND expires_at > ?", code, now).next().value
      : undefined;
    if (!code || !row) {
      this.#guesses.recordWrong(approverSub, network, now);
      return { ok: false, reason: "not_found" };
    }
    // Sticky: once a link has shown this code to someone, no later call may approve it on the link's word alone.
    if (source === "link" && !row.via_link) this.#sql.exec("UPDATE device_codes SET via_link = 1 WHERE user_code = ?", code);
    return {
      ok: true,
      request: {
        userCode: `${code.slice(0, 4)}-${code.slice(4)}`,
        clientName: row.client_name,
        hostname: row.hostname,
        platform: row.platform,
        arch: row.arch,
        ip: row.ip,
        location: row.location,
        country: row.country,
        city: row.city,
        asn: row.asn,
        asOrganization: row.as_org,
        createdAt: row.created_at,
        expiresAt: row.expires_at,
      },
      confirmation: source === "link" || row.via_link ? "second_half" : "none",
    };
  }

  /**
   * Approves or denies. Approving a code opened from a link needs `confirm`: the code's last four letters (or all
   * eight) as the user reads them on the computer's screen, which is what the link's sender cannot make them skip
   * (RFC 8628 §5.4). A wrong confirmation counts as a wrong code. Denying never needs one.
   */
  async decide(userCode: string, approver: { sub: string; email: string }, approve: boolean, network: string, confirm = ""): Promise<LookupResult> {
    const found = await this.lookup(userCode, approver.sub, network);
    if (!found.ok) return found;
    const code = found.request.userCode.replace("-", "");
    if (approve && (found.confirmation === "second_half" || confirm)) {
      if (!confirm) return { ok: false, reason: "confirmation_required" };
      if (!confirms(code, confirm)) {
        this.#guesses.recordWrong(approver.sub, network, Date.now());
        return { ok: false, reason: "confirmation_mismatch" };
      }
    }
    this.#sql.exec(
      "UPDATE device_codes SET status = ?, approver_sub = ?, approver_email = ? WHERE user_code = ? AND status = 'pending'",
      approve ? "approved" : "denied",
      approver.sub,
      approver.email,
      code,
    );
    return found;
  }

  /** Deletes codes kept long enough past their expiry, and spent guess windows; safe to run any number of times. */
  prune(now: number): void {
    this.#sql.exec("DELETE FROM device_codes WHERE expires_at <= ?", now - KEEP_EXPIRED_MS);
    this.#guesses.prune(now);
  }

  /** When the next code becomes prunable, or null when there is none. */
  nextDue(): number | null {
    const row = this.#sql.exec<{ at: number | null }>("SELECT MIN(expires_at) AS at FROM device_codes").one();
    return row.at === null ? null : row.at + KEEP_EXPIRED_MS;
  }
}
