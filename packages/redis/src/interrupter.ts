/** What {@link Interrupter.race} resolves with when it was cut short. */
export const INTERRUPTED = Symbol('interrupted');

/** What {@link Interrupter.race} rejects with when its time ran out. */
export class TimedOut extends Error {
  constructor(readonly timeoutMs: number) {
    super(`No answer within ${timeoutMs} ms.`);
    this.name = 'TimedOut';
  }
}

/**
 * Waits that one call cuts short: the reader's waits on Redis and its pauses between retries,
 * which `close()` must not sit through.
 */
export class Interrupter {
  private readonly pending = new Set<() => void>();

  /** Waits `ms`, or less if {@link Interrupter.interrupt} is called meanwhile. */
  pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.pending.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.pending.add(done);
    });
  }

  /**
   * Settles as `promise` does, or resolves with {@link INTERRUPTED} as soon as
   * {@link Interrupter.interrupt} is called, or rejects with {@link TimedOut} after `timeoutMs`
   * when one is given.
   */
  race<T>(promise: Promise<T>, timeoutMs?: number): Promise<T | typeof INTERRUPTED> {
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.pending.delete(cut);
      };
      const cut = () => {
        done();
        resolve(INTERRUPTED);
      };
      // A connection that died without a word never answers.
      const timer = timeoutMs === undefined ? undefined : setTimeout(() => (done(), reject(new TimedOut(timeoutMs))), timeoutMs);
      this.pending.add(cut);
      promise.finally(done).then(resolve, reject);
    });
  }

  /** Cuts every pending wait short at once. */
  interrupt(): void {
    // Each wait removes itself from the set as it ends.
    for (const cut of [...this.pending]) cut();
  }
}
