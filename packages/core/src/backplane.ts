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
  /** The data, serialized, as it goes on the wire; `undefined` for an event without data. */
  readonly data: string | undefined;
  /** True when `data` is a string as it was published, false when it is a serialized value. */
  readonly raw: boolean;
  /** The value as published, on the instance that published it; others decode `data`. */
  readonly value?: unknown;
}

/** What a channel hands its backplane to append. */
export interface BackplanePublish {
  readonly id: string | undefined;
  readonly event: string | undefined;
  readonly data: string | undefined;
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
