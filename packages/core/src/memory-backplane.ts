import type { Backplane, BackplaneEntry, BackplaneListener } from './backplane.js';
import { SseError } from './errors.js';
import { createMemoryHistory, type HistoryStore, type MemoryHistoryOptions } from './history.js';

const ORIGIN_ID = '0';

/** Options of {@link createMemoryBackplane}. */
export interface MemoryBackplaneOptions {
  /** Where each channel keeps its history: options for the in-memory store, or a factory. */
  history?: MemoryHistoryOptions | ((channel: string) => HistoryStore);
}

/**
 * The default backplane: fan-out within this process, with a bounded in-memory history per
 * channel. Delivery is synchronous, in publish order.
 */
export function createMemoryBackplane(options: MemoryBackplaneOptions = {}): Backplane {
  const makeHistory =
    typeof options.history === 'function'
      ? options.history
      : (
          (historyOptions: MemoryHistoryOptions | undefined) => () =>
            createMemoryHistory(historyOptions)
        )(options.history);
  const logs = new Map<string, { history: HistoryStore; listeners: Set<BackplaneListener>; position: number }>();
  let closed = false;
  const logOf = (channel: string) => {
    if (closed) throw new SseError('ERR_SSE_CLOSED', 'This backplane is closed.');
    let log = logs.get(channel);
    if (!log) logs.set(channel, (log = { history: makeHistory(channel), listeners: new Set(), position: 0 }));
    return log;
  };

  return {
    originId: ORIGIN_ID,
    publish(channel, { id, event, data, raw, value }) {
      if (closed) return Promise.reject(new SseError('ERR_SSE_CLOSED', 'This backplane is closed.'));
      const log = logOf(channel);
      const position = log.position + 1;
      const entryId = id ?? String(position);
      if (log.history.has(entryId)) {
        return Promise.reject(
          new SseError('ERR_SSE_INVALID_FIELD', `The id ${JSON.stringify(entryId)} is already in this channel's history.`),
        );
      }
      log.position = position;
      const entry: BackplaneEntry = { id: entryId, position, event, data, raw, value };
      log.history.append(entry);
      for (const listener of log.listeners) listener.entry(entry);
      return Promise.resolve(entryId);
    },
    subscribe(channel, listener) {
      const { listeners, history } = logOf(channel);
      listeners.add(listener);
      const latest = history.latest();
      return { start: latest && { id: latest.id, position: latest.position }, unsubscribe: () => void listeners.delete(listener) };
    },
    replay(channel, afterId, limit) {
      const log = logOf(channel);
      const { history } = log;
      if (afterId === ORIGIN_ID && !history.has(ORIGIN_ID)) {
        // From the origin, replay is the whole log: possible only while nothing has fallen out.
        const oldest = history.oldest();
        if (log.position === 0) return { found: true, position: 0, entries: [] };
        if (oldest?.position === 1) {
          const entries = [oldest, ...history.after(oldest.id, limit)!.entries];
          if (entries.length <= limit) return { found: true, position: 0, entries };
        }
      }
      const tail = history.after(afterId, limit + 1);
      if (tail && tail.entries.length <= limit) return { found: true, position: tail.position, entries: tail.entries };
      const latest = history.latest();
      return { found: false, latest: latest && { id: latest.id, position: latest.position } };
    },
    close() {
      closed = true;
      logs.clear();
    },
  };
}
