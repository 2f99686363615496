import { SseError } from './errors.js';
import { createMemoryHistory, type HistoryStore, type MemoryHistoryOptions } from './history.js';

/**
 * One event in a channel's log, as a backplane stores and delivers it. Data travels already
 * serialized, so that a publish is serialized once and no instance serializes it again.
 */
export interface BackplaneEntry {
  /** The SSE id, unique within the channel's log. */
  readonly id: string;
  /** Where the entry sits in the log: strictly increasing in delivery order. */
  readonly position: number | bigint;
  /** The event name; `undefined` for the default `message`. */
  readonly event: string | undefined;
  /** The data as it goes on the wire; `undefined` for an event without data. */
  readonly text: string | undefined;
  /** True when `text` is a string as it was published, false when it is a serialized value. */
  readonly raw: boolean;
  /** The value as published, on the instance that published it; others decode `text`. */
  readonly value?: unknown;
}

/** What a channel hands its backplane to append. */
export interface BackplanePublish {
  readonly id: string | undefined;
  readonly event: string | undefined;
  readonly text: string | undefined;
  readonly raw: boolean;
  readonly value: unknown;
}

/** The answer to a replay request. */
export type BackplaneReplay =
  /** `afterId` is in the log: here is everything after it, oldest first. */
  | { readonly found: true; readonly position: number | bigint; readonly entries: readonly BackplaneEntry[] }
  /** `afterId` cannot be resumed from; `latest` is the newest entry, if any. */
  | { readonly found: false; readonly latest: Pick<BackplaneEntry, 'id' | 'position'> | undefined };

/**
 * Fan-out and history for channels, within one process or across many. A backplane keeps one
 * ordered log per channel name and promises:
 * - `publish` appends an entry and resolves to its id, or rejects when the log is out of reach;
 * - a `subscribe` listener receives every entry appended after the subscription is ready,
 *   exactly once, in log order;
 * - `replay` returns every entry after an id, in the same order.
 * The channel builds gap-free, duplicate-free resume on these three promises alone.
 */
export interface Backplane {
  /**
   * An id that stands before the first entry of every log, if the backplane has one. A channel
   * gives it to clients that subscribe before anything was published, so that even they resume
   * without a gap after a drop.
   */
  readonly originId?: string;
  publish(channel: string, entry: BackplanePublish): Promise<string>;
  /** Resolves (or returns) once delivery has started, with a function that stops it. */
  subscribe(channel: string, listener: (entry: BackplaneEntry) => void): (() => void) | Promise<() => void>;
  /**
   * Every entry after `afterId`. Answers not found when the id is unknown, fell out of the log,
   * or is more than `limit` entries behind, which bounds the work one resume can cause.
   */
  replay(channel: string, afterId: string, limit: number): BackplaneReplay | Promise<BackplaneReplay>;
  /** Releases what the backplane holds. */
  close(): void | Promise<void>;
}

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
      : ((historyOptions: MemoryHistoryOptions | undefined) => () => createMemoryHistory(historyOptions))(options.history);
  const logs = new Map<string, { history: HistoryStore; listeners: Set<(entry: BackplaneEntry) => void>; position: number }>();
  const logOf = (channel: string) => {
    let log = logs.get(channel);
    if (!log) logs.set(channel, (log = { history: makeHistory(channel), listeners: new Set(), position: 0 }));
    return log;
  };

  return {
    originId: ORIGIN_ID,
    publish(channel, { id, event, text, raw, value }) {
      const log = logOf(channel);
      const position = log.position + 1;
      const entryId = id ?? String(position);
      if (log.history.has(entryId)) {
        return Promise.reject(new SseError('ERR_SSE_INVALID_FIELD', `The id ${JSON.stringify(entryId)} is already in this channel's history.`));
      }
      log.position = position;
      const entry: BackplaneEntry = { id: entryId, position, event, text, raw, value };
      log.history.append(entry);
      for (const listener of log.listeners) listener(entry);
      return Promise.resolve(entryId);
    },
    subscribe(channel, listener) {
      const { listeners } = logOf(channel);
      listeners.add(listener);
      return () => void listeners.delete(listener);
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
      logs.clear();
    },
  };
}
