/** Polls `predicate` every few milliseconds until it holds; rejects after `timeoutMs`. */
export async function eventually(predicate: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const held: unknown = predicate();
    // A promise is truthy: an async predicate would pass at once without waiting. Use untilDone.
    if (typeof (held as Promise<unknown> | undefined)?.then === 'function') throw new TypeError('eventually takes a synchronous predicate');
    if (held) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Waits until `done()` holds, failing only once `progress()` has stayed the same for `stallMs`:
 * a loaded machine is slow, a stuck test makes no progress. Both may be async (a browser page's
 * state, say). For waits whose length depends on the machine's load, not on a deadline.
 */
export async function untilDone(
  done: () => boolean | Promise<boolean>,
  progress: () => unknown,
  { stallMs = 5000, what = 'progress' }: { stallMs?: number; what?: string } = {},
): Promise<void> {
  let last = JSON.stringify(await progress());
  let changedAt = Date.now();
  while (!(await done())) {
    await delay(20);
    const now = JSON.stringify(await progress());
    if (now !== last) {
      last = now;
      changedAt = Date.now();
    } else if (Date.now() - changedAt > stallMs) {
      throw new Error(`no ${what} for ${stallMs} ms; stuck at ${now}`);
    }
  }
}
