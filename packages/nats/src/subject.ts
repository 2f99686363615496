import { SseError } from '@ssekit/core';

/** The longest subject token a channel name may become; NATS caps a protocol line at 4 KiB. */
const MAX_TOKEN_LENGTH = 1024;
const PLAIN = /[A-Za-z0-9_-]/;
const encoder = new TextEncoder();
/** With the `u` flag, only a surrogate without its pair matches. */
const LONE_SURROGATE = /\p{Surrogate}/u;

/** Whether `text` is well-formed UTF-16 (`String.prototype.isWellFormed`, which ES2023 lacks). */
export const isWellFormed = (text: string): boolean => !LONE_SURROGATE.test(text);

/**
 * A channel name as one subject token: `A-Z a-z 0-9 _ -` stay as they are, and every other
 * UTF-8 byte becomes `~` and two upper-case hex digits, so that names with `.`, `*`, `>`,
 * spaces or anything else never split or widen a subject. The empty name is `~`. Readable for
 * the usual names (`orders` stays `orders`) and reversible.
 *
 * @throws {SseError} `ERR_SSE_INVALID_OPTION` for a name that is not well-formed UTF-16, or
 * whose token would be longer than 1024 characters.
 */
export function tokenOf(channel: string): string {
  if (typeof channel !== 'string' || !isWellFormed(channel)) {
    throw new SseError('ERR_SSE_INVALID_OPTION', 'A channel name on the NATS backplane must be a well-formed string.');
  }
  if (channel === '') return '~';
  let token = '';
  for (const char of channel) {
    if (PLAIN.test(char)) token += char;
    else for (const byte of encoder.encode(char)) token += `~${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  if (token.length > MAX_TOKEN_LENGTH) {
    throw new SseError(
      'ERR_SSE_INVALID_OPTION',
      `The channel name ${JSON.stringify(channel.slice(0, 40))}... is too long for a NATS subject (its token would be ${token.length} characters, at most ${MAX_TOKEN_LENGTH}).`,
    );
  }
  return token;
}
