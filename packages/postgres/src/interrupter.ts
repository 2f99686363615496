/** What {@link Interrupter.race} resolves with when it was cut short. */
export const INTERRUPTED = Symbol('interrupted');

/**
 * Waits that one call cuts short: the reconnect pauses and the waits on PostgreSQL that
 * `close()` must not sit through.
 */
export class Interrupter {
  private readonly pending = new Set<() => void>();
  private interrupted = false;

  /** Waits `ms`, or less if {@link Interrupter.interrupt} is called meanwhile. */
  pause(ms: number): Promise<void> {
    if (this.interrupted) return Promise.resolve();
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

  /** Settles as `promise` does, or resolves with {@link INTERRUPTED} once interrupted. */
  race<T>(promise: Promise<T>): Promise<T | typeof INTERRUPTED> {
    if (this.interrupted) return Promise.resolve(INTERRUPTED);
    return new Promise((resolve, reject) => {
      const cut = () => {
        this.pending.delete(cut);
        resolve(INTERRUPTED);
      };
      this.pending.add(cut);
      promise.finally(() => this.pending.delete(cut)).then(resolve, reject);
    });
  }

  /** Cuts every pending wait short, and every later one at once. */
  interrupt(): void {
    this.interrupted = true;
    for (const cut of [...this.pending]) cut();
  }
}

/** The pause before reconnect attempt `attempt` (from 0): 50 ms, doubling, at most `maxMs`. */
export function backoff(attempt: number, maxMs: number): number {
  return Math.min(maxMs, 50 * 2 ** Math.min(attempt, 10));
}

/**
 * Settles as `promise` does, or rejects with what `onTimeout` returns after `ms`; `onTimeout`
 * may also undo what the promise was doing.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: Error) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
