import { SseError } from '@ssekit/core';

/**
 * Why a publish (or a replay) did not go through: NATS was unreachable, did not answer in time,
 * or refused. Nothing is dropped silently: the promise rejects with this. It is an `SseError`
 * with the code `ERR_SSE_BACKPLANE_UNAVAILABLE`.
 *
 * @example
 * ```ts
 * try { await channel.publish({ event: 'order', data }) }
 * catch (error) {
 *   if (error instanceof NatsBackplaneError && !error.sent) retryLater(data); // surely not appended
 * }
 * ```
 */
export class NatsBackplaneError extends SseError {
  declare readonly code: 'ERR_SSE_BACKPLANE_UNAVAILABLE';
  /**
   * Whether the request may have reached the stream. When `false`, the entry was surely not
   * appended: the connection was down and nothing was sent, or NATS answered with a refusal.
   * When `true`, the connection dropped or timed out after the request left, so the stream may
   * have appended the entry all the same.
   */
  readonly sent: boolean;

  constructor(message: string, options: { cause?: unknown; sent: boolean }) {
    super('ERR_SSE_BACKPLANE_UNAVAILABLE', message, { cause: options.cause });
    this.name = 'NatsBackplaneError';
    this.sent = options.sent;
  }
}

/** What the backplane rejects with when it is used after `close()`. */
export function closedError(): SseError {
  return new SseError('ERR_SSE_CLOSED', 'This NATS backplane is closed.');
}

/** The message of anything thrown. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * `error`, from a request named `what`, as the error the backplane rejects with: its own and
 * ssekit's pass through; the NATS client's say whether the request may have had an effect.
 */
export function unavailable(what: string, error: unknown, timeoutMs: number): SseError {
  if (error instanceof SseError) return error;
  const name = (error as Error | undefined)?.name;
  if (name === 'TimeoutError') {
    return new NatsBackplaneError(`${what} failed: NATS did not answer within ${timeoutMs} ms.`, { cause: error, sent: true });
  }
  if (name === 'JetStreamNotEnabled' || name === 'NoResponders' || (error as { isNoResponders?: () => boolean }).isNoResponders?.()) {
    return new NatsBackplaneError(`${what} failed: no JetStream stream answered (is JetStream enabled, and is the stream there?).`, {
      cause: error,
      sent: false,
    });
  }
  // The server answered with a refusal, or the client refused to send (a payload over the
  // server's max_payload): nothing was stored.
  const refused = ['JetStreamApiError', 'StreamNotFoundError', 'ConsumerNotFoundError', 'InvalidArgumentError'].includes(name ?? '');
  return new NatsBackplaneError(`${what} failed: ${messageOf(error)}.`, { cause: error, sent: !refused });
}
