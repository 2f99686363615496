import type { Backplane, BackplaneEntry, BackplaneListener } from '@ssekit/core';

/** A backplane a test drives by hand, which can report a gap in live delivery: the memory one never has any. */
export interface GappingBackplane {
  readonly backplane: Backplane;
  /** Adds entry `n` (id and data `String(n)`) to the log without delivering it, as a lost delivery. */
  append(n: number): BackplaneEntry;
  /** Adds entry `n` to the log and delivers it live. */
  deliver(n: number): void;
  /** Tells the channel that live delivery skipped entries: it replays them from the log. */
  gap(): void;
}

export function createGappingBackplane(): GappingBackplane {
  const log: BackplaneEntry[] = [];
  let listener: BackplaneListener | undefined;
  const append = (n: number): BackplaneEntry => {
    const entry: BackplaneEntry = { id: String(n), position: n, event: undefined, data: String(n), raw: true };
    log.push(entry);
    return entry;
  };
  return {
    backplane: {
      originId: '0',
      publish: () => Promise.reject(new Error('a gapping backplane takes no publish')),
      subscribe: (_name, subscriber) => ((listener = subscriber), { start: undefined, unsubscribe() {} }),
      replay: (_name, afterId) => {
        const index = afterId === '0' ? 0 : log.findIndex((entry) => entry.id === afterId) + 1;
        return { found: true, position: index, entries: log.slice(index) };
      },
      close() {},
    },
    append,
    deliver: (n) => listener!.entry(append(n)),
    gap: () => listener!.gap(),
  };
}
