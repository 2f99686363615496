/**
 * Every code an {@link SseError} can carry.
 *
 * - `ERR_SSE_INVALID_FIELD`: a message field would break the wire format (a line break in
 *   `event` or `id`, a NUL in `id`, a `retry` that is not a non-negative integer, ...).
 * - `ERR_SSE_INVALID_DATA`: the serializer could not turn `data` into a string.
 * - `ERR_SSE_INVALID_OPTION`: an option passed to a factory is out of range.
 * - `ERR_SSE_HEADERS_SENT`: the stream cannot open because the response already started.
 * - `ERR_SSE_CLOSED`: a channel was used after `close()`.
 * - `ERR_SSE_EVENT_TOO_LARGE`: an event is larger than `maxEventBytes`.
 * - `ERR_SSE_BACKPLANE_UNAVAILABLE`: a backplane could not take or give events (its server was
 *   unreachable, did not answer in time, or refused); a publish rejects with it, never drops.
 */
export type SseErrorCode =
  | 'ERR_SSE_INVALID_FIELD'
  | 'ERR_SSE_INVALID_DATA'
  | 'ERR_SSE_INVALID_OPTION'
  | 'ERR_SSE_HEADERS_SENT'
  | 'ERR_SSE_CLOSED'
  | 'ERR_SSE_EVENT_TOO_LARGE'
  | 'ERR_SSE_BACKPLANE_UNAVAILABLE';

/**
 * The one error class ssekit throws. Misuse throws it synchronously; a client that leaves
 * never does.
 *
 * @example
 * ```ts
 * try { stream.send({ event: userInput, data }) }
 * catch (error) { if (error instanceof SseError && error.code === 'ERR_SSE_INVALID_FIELD') ... }
 * ```
 */
export class SseError extends Error {
  readonly code: SseErrorCode;

  constructor(code: SseErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SseError';
    this.code = code;
  }
}
