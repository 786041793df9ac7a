// Caps on wrong user codes at the approval page (RFC 8628 §5.1), shaped so a few accounts cannot lock out everyone else.
import type { GuessRow } from "./schema.ts";

/**
 * Wrong user codes allowed in one window. The per-account and per-network caps stop one guesser; the global cap is a
 * high backstop that bounds the sum (and so the odds of hitting any pending code), and it stops only accounts and
 * networks that have guessed wrong themselves: filling it takes 100 accounts on 50 networks, and even then a user who
 * types their code right is never refused. See docs/security.md, "Devices".
 */
export const GUESS_LIMITS = { perUser: 10, perNetwork: 20, global: 1000 } as const;
export const GUESS_WINDOW_MS = 15 * 60 * 1000;

export class GuessLimits {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  /** Wrong guesses under `key` in the current window. */
  #count(key: string, now: number): number {
    const row = this.#sql.exec<GuessRow>("SELECT key, window_start, count FROM guesses WHERE key = ?", key).next().value;
    return row && row.window_start > now - GUESS_WINDOW_MS ? row.count : 0;
  }

  /** Whether this user, from this network (an IPv4 address or an IPv6 /64), may try a code now. */
  allowed(sub: string, network: string, now: number): boolean {
    const user = this.#count(`user:${sub}`, now);
    const net = this.#count(`net:${network}`, now);
    if (user >= GUESS_LIMITS.perUser || net >= GUESS_LIMITS.perNetwork) return false;
    return this.#count("global", now) < GUESS_LIMITS.global || (user === 0 && net === 0);
  }

  /** Counts one wrong code against the user, the network and everyone. */
  recordWrong(sub: string, network: string, now: number): void {
    for (const key of [`user:${sub}`, `net:${network}`, "global"]) {
      const current = this.#count(key, now);
      this.#sql.exec(
        `INSERT INTO guesses (key, window_start, count) VALUES (?, ?, 1)
         ON CONFLICT(key) DO UPDATE SET
           window_start = CASE WHEN ? = 0 THEN excluded.window_start ELSE window_start END,
           count = CASE WHEN ? = 0 THEN 1 ELSE count + 1 END`,
        key,
        now,
        current,
        current,
      );
    }
  }

  prune(now: number): void {
    this.#sql.exec("DELETE FROM guesses WHERE window_start <= ?", now - GUESS_WINDOW_MS);
  }
}
