/**
 * The symbols that core's modules use to reach into each other's objects without making those
 * entries public. One place, one convention: `k` and what the slot holds or does.
 */

/** A stream's method that writes an event already formatted: a channel formats once for all. */
export const kWriteFormatted = Symbol('ssekit.writeFormatted');

/** A stream's method that closes it for a given reason, after writing a last formatted text. */
export const kCloseFor = Symbol('ssekit.closeFor');

/** A stream's method that reports an error through `onError`, then closes with reason `error`. */
export const kFail = Symbol('ssekit.fail');

/** Where a lazily made stream's factory waits on its holder (Express's `res`, Koa's `ctx`). */
export const kCreateStream = Symbol('ssekit.createStream');

/** Where a lazily made stream is kept on its holder once made. */
export const kLazyStream = Symbol('ssekit.lazyStream');

/**
 * A stream's method that asks its group to let it in, before any head: true when it may open;
 * otherwise the stream has already answered (429, a deferral, a shutdown's farewell) and closed.
 */
export const kAdmit = Symbol('ssekit.admit');

/**
 * A stream's method that takes a turn to replay from its group: undefined when replays are not
 * capped, a promise of the turn's end otherwise; false when the queue was full, and the stream
 * was deferred.
 */
export const kReplayTurn = Symbol('ssekit.replayTurn');
