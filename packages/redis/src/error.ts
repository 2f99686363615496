import { SseError } from '@ssekit/core';

/**
 * Why a publish (or a replay) did not go through: Redis was unreachable, did not answer in
 * time, or answered with an error. Nothing is dropped silently: the promise rejects with this.
 * It is an `SseError` with the code `ERR_SSE_BACKPLANE_UNAVAILABLE`.
 *
 * @example
 * ```ts
 * try { await channel.publish({ event: 'order', data }) }
 * catch (error) {
 *   if (error instanceof RedisBackplaneError && !error.sent) retryLater(data); // surely not appended
 * }
 * ```
 */
export class RedisBackplaneError extends SseError {
  declare readonly code: 'ERR_SSE_BACKPLANE_UNAVAILABLE';
  /**
   * Whether the command had left this process. When `false`, Redis never saw it: a publish was
   * surely not appended. When `true`, the connection broke or timed out after it was written,
   * so Redis may have appended the entry all the same.
   */
  readonly sent: boolean;

  constructor(message: string, options: { cause?: unknown; sent: boolean }) {
    super('ERR_SSE_BACKPLANE_UNAVAILABLE', message, { cause: options.cause });
    this.name = 'RedisBackplaneError';
    this.sent = options.sent;
  }
}

/** What the backplane throws, or rejects with, when it is used after `close()`. */
export function closedError(): SseError {
  return new SseError('ERR_SSE_CLOSED', 'This Redis backplane is closed.');
}

/** The message of anything thrown. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
