/**
 * Every code an {@link SseClientError} can carry.
 *
 * - `ERR_SSE_CLIENT_HTTP`: the server answered with a status other than 200 (`status` says which).
 *   429, 503 and other 5xx are retried; other 4xx close the source unless `onError` says retry.
 * - `ERR_SSE_CLIENT_CONTENT_TYPE`: a 200 that is not `text/event-stream`. Closes the source.
 * - `ERR_SSE_CLIENT_NETWORK`: the request failed or the stream broke. Retried.
 * - `ERR_SSE_CLIENT_IDLE`: nothing arrived for `idleTimeoutMs`, heartbeats included: the connection
 *   is taken for dead and a new one made. Retried.
 * - `ERR_SSE_CLIENT_EVENT_TOO_LARGE`: one event outgrew `maxEventLength`. Closes the source.
 * - `ERR_SSE_CLIENT_OPTION`: an option is invalid. Thrown by `createEventSource`.
 */
export type SseClientErrorCode =
  | 'ERR_SSE_CLIENT_HTTP'
  | 'ERR_SSE_CLIENT_CONTENT_TYPE'
  | 'ERR_SSE_CLIENT_NETWORK'
  | 'ERR_SSE_CLIENT_IDLE'
  | 'ERR_SSE_CLIENT_EVENT_TOO_LARGE'
  | 'ERR_SSE_CLIENT_OPTION';

/** The one error class of `@ssekit/client`: what `onError` gets, and what a closed source's iterator throws. */
export class SseClientError extends Error {
  readonly code: SseClientErrorCode;
  /** The HTTP status, for `ERR_SSE_CLIENT_HTTP` and `ERR_SSE_CLIENT_CONTENT_TYPE`. */
  readonly status: number | undefined;
  /** Whether the default policy reconnects after it. */
  readonly retryable: boolean;

  constructor(code: SseClientErrorCode, message: string, options: { status?: number; retryable?: boolean; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'SseClientError';
    this.code = code;
    this.status = options.status;
    this.retryable = options.retryable ?? false;
  }
}
