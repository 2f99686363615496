/**
 * Pauses between retries that one call cuts short: `close()` must not sit through the backoff
 * of a reader that waits for NATS.
 */
export class Pauses {
  private readonly pending = new Set<() => void>();

  /** Waits `ms`, or less if {@link Pauses.interrupt} is called meanwhile. */
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

  /** Ends every pending pause at once. */
  interrupt(): void {
    for (const done of [...this.pending]) done();
  }
}

const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 1000;

/**
 * How long to wait before retry number `attempt` (from 0). Capped at 1 s, so that a reader finds
 * NATS within a second of its return, well inside the 5 s in which delivery must resume.
 */
export function backoff(attempt: number): number {
  return Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** attempt);
}
