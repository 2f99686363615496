import { SseError } from '@ssekit/core';

/**
 * Why a publish (or a replay) did not go through: PostgreSQL was unreachable, did not answer in
 * time, or refused the statement. Nothing is dropped silently: the promise rejects with this.
 * It is an `SseError` with the code `ERR_SSE_BACKPLANE_UNAVAILABLE`.
 *
 * @example
 * ```ts
 * try { await channel.publish({ event: 'order', data }) }
 * catch (error) {
 *   if (error instanceof PostgresBackplaneError && !error.sent) retryLater(data); // surely not appended
 * }
 * ```
 */
export class PostgresBackplaneError extends SseError {
  declare readonly code: 'ERR_SSE_BACKPLANE_UNAVAILABLE';
  /**
   * Whether the statement may have run. `false`: it surely did not (PostgreSQL was out of reach,
   * or answered with an error, which rolled it back), so a publish was not appended. `true`: the
   * connection broke, or the deadline passed, after the statement was sent, so PostgreSQL may
   * have committed it all the same.
   */
  readonly sent: boolean;

  constructor(message: string, options: { cause?: unknown; sent: boolean }) {
    super('ERR_SSE_BACKPLANE_UNAVAILABLE', message, { cause: options.cause });
    this.name = 'PostgresBackplaneError';
    this.sent = options.sent;
  }
}

/** What the backplane throws, or rejects with, when it is used after `close()`. */
export function closedError(): SseError {
  return new SseError('ERR_SSE_CLOSED', 'This PostgreSQL backplane is closed.');
}

/** The message of anything thrown. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The SQLSTATE of an error PostgreSQL answered with, if it is one. */
export function sqlStateOf(error: unknown): string | undefined {
  // Both libraries give PostgreSQL's errors a severity; a socket error's code (EPIPE) may
  // look like a SQLSTATE too.
  const { code, severity } = (error ?? {}) as { code?: unknown; severity?: unknown };
  return typeof severity === 'string' && typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * Whether an error says the connection, not the statement, failed: the server went away or
 * refused connections (SQLSTATE class 08, an administrator shutdown, a server starting up or
 * too many connections), or the socket failed without an answer from PostgreSQL at all.
 */
export function isConnectionError(error: unknown): boolean {
  const state = sqlStateOf(error);
  if (state === undefined) return true;
  return state.startsWith('08') || state === '57P01' || state === '57P02' || state === '57P03' || state === '53300';
}
