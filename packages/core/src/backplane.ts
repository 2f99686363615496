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

/** An entry's place in a log: its id, and where it sits. */
export type BackplanePosition = Pick<BackplaneEntry, 'id' | 'position'>;

/** A live subscription to one channel's log. */
export interface BackplaneSubscription {
  /**
   * The newest entry of the log when delivery started: the listener receives every entry after
   * it, and none before. `undefined` when the log was empty, so delivery starts at `originId`.
   * A channel hands it to clients that connect before it delivered anything, so that even they
   * resume without a gap.
   */
  readonly start: BackplanePosition | undefined;
  /** Stops delivery to this listener. */
  unsubscribe(): void;
}

/** What a subscription delivers to. */
export interface BackplaneListener {
  /** Every entry appended after the subscription's start, exactly once, in log order. */
  entry(entry: BackplaneEntry): void;
  /**
   * Live delivery skipped entries: the engine lost them, or this reader fell behind the log's
   * trimming. Called before the first entry delivered after the gap. The channel then replays
   * from the last entry it delivered, and sends its reset event where even replay cannot help.
   */
  gap(): void;
}

/**
 * Fan-out and history for channels, within one process or across many. A backplane keeps one
 * ordered log per channel name and promises:
 * - `publish` appends an entry and resolves to its id, or rejects when the log is out of reach;
 * - a subscription delivers every entry appended after its `start`, exactly once, in log order,
 *   or reports a gap before the first entry after any it could not deliver;
 * - `replay` returns every entry after an id, in the same order.
 * The channel builds gap-free, duplicate-free resume on these promises alone.
 * `runBackplaneContract` from `@ssekit/core/testing` checks every one of them.
 */
export interface Backplane {
  /**
   * An id that stands before the first entry of every log, if the backplane has one: replay
   * after it returns the whole log, while nothing has been trimmed from it.
   */
  readonly originId?: string;
  publish(channel: string, entry: BackplanePublish): Promise<string>;
  /** Resolves (or returns) once delivery has started. */
  subscribe(channel: string, listener: BackplaneListener): BackplaneSubscription | Promise<BackplaneSubscription>;
  /**
   * Every entry after `afterId`. Answers not found when the id is unknown, fell out of the log,
   * or is more than `limit` entries behind, which bounds the work one resume can cause.
   */
  replay(channel: string, afterId: string, limit: number): BackplaneReplay | Promise<BackplaneReplay>;
  /** Releases what the backplane holds. Publishing or subscribing after it rejects. */
  close(): void | Promise<void>;
}
