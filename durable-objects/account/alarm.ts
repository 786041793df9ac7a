// The account object's one alarm, multiplexed: each concern says when it is next due, the alarm fires at the soonest.

/** Something the account must do at a time: prune what expired, end a grant. */
export interface AlarmTimer {
  /** When this timer next needs to run (ms since the epoch), or null when it needs nothing. Read after every run. */
  nextDue(now: number): number | null;
  /** Does what is due at `now`. Idempotent: an alarm can fire early, twice, or be retried after a failure. */
  run(now: number): void;
}

/**
 * A Durable Object has one alarm. This keeps it at the soonest time any timer needs: `schedule()` after storing
 * something that will need it (only ever brings the alarm forward), `fire()` from alarm().
 */
export class AlarmScheduler {
  readonly #storage: DurableObjectStorage;
  readonly #timers: readonly AlarmTimer[];

  constructor(storage: DurableObjectStorage, timers: readonly AlarmTimer[]) {
    this.#storage = storage;
    this.#timers = timers;
  }

  #soonest(now: number): number | null {
    let soonest: number | null = null;
    for (const timer of this.#timers) {
      const due = timer.nextDue(now);
      if (due !== null && (soonest === null || due < soonest)) soonest = due;
    }
    return soonest;
  }

  /** Brings the alarm forward when a timer is now due before it (or there is none); never pushes it back. */
  async schedule(): Promise<void> {
    const due = this.#soonest(Date.now());
    if (due === null) return;
    const current = await this.#storage.getAlarm();
    if (current === null || due < current) await this.#storage.setAlarm(due);
  }

  /**
   * Runs every timer (each does only what is due, so running one early is harmless), then sets the alarm for the
   * soonest next due time, or clears it. Throwing leaves the alarm to the runtime's retry, which runs it all again.
   */
  async fire(): Promise<void> {
    const now = Date.now();
    for (const timer of this.#timers) timer.run(now);
    const due = this.#soonest(now);
    if (due === null) await this.#storage.deleteAlarm();
    else await this.#storage.setAlarm(due);
  }
}
