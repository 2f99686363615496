import { SseError } from './errors.js';
import { isValidEventId } from './id.js';

/** Maps each event name to the type of its `data`. The name `message` is the default event. */
export type SseEventMap = Record<string, unknown>;

/** The fields every message may carry, whatever its event. */
export interface SseFields {
  /**
   * The event id. The client sends the last one back as `Last-Event-ID` when it reconnects.
   * A string must be printable ASCII, at most 128 characters, with no space at either end; a
   * number must be a non-negative safe integer. The empty string clears the client's last id.
   */
  id?: string | number;
  /** Milliseconds the client waits before reconnecting: a non-negative integer. */
  retry?: number;
  /** A comment, ignored by clients. Line breaks split it into several comment lines. */
  comment?: string;
}

type NamedMessage<TEvents extends SseEventMap> = {
  [K in keyof TEvents & string]: SseFields & { event: K; data?: TEvents[K] };
}[keyof TEvents & string];

/** The payload type of the default `message` event, or `never` when the map has none. */
export type SseDefaultData<TEvents extends SseEventMap> = 'message' extends keyof TEvents ? TEvents['message'] : never;

type DefaultMessage<TEvents extends SseEventMap> = SseFields & {
  event?: undefined;
  data?: SseDefaultData<TEvents>;
};

/**
 * One message: `{ data?, event?, id?, retry?, comment? }`. With a typed event map, `data` is
 * checked against the type that `event` names.
 *
 * A string `data` goes out as is; any other value goes through the serializer (JSON by
 * default). A message with an `event` but no `data` is sent with empty data, because clients
 * never dispatch an event without a data line.
 */
export type SseMessage<TEvents extends SseEventMap = SseEventMap> = NamedMessage<TEvents> | DefaultMessage<TEvents>;

/** Options of {@link formatEvent}. */
export interface FormatOptions {
  /**
   * Turns a non-string `data` into text. Line breaks in its result are split into several
   * `data:` lines, so it may return anything.
   * @default JSON.stringify
   */
  serialize?: (data: unknown) => string;
}

const LINE_BREAK = /\r\n|\r|\n/;
const HAS_LINE_BREAK = /[\r\n]/;

/**
 * Formats one message as the exact text of one event, ready for a single write.
 *
 * Data is split on CRLF, CR and LF into one `data:` line each, every field has one space after
 * its colon, and no CR byte is ever produced. A message with `data`, `event` or `id` ends with
 * the blank line that dispatches it; one with only `comment` or `retry` does not, because some
 * clients fire an empty message on every blank line.
 *
 * @throws {SseError} `ERR_SSE_INVALID_FIELD` when a field could forge others (a line break in
 * `event` or `id`, a NUL in `id`), an id breaks the strict id policy, `retry` is not a
 * non-negative integer, or the message is empty; `ERR_SSE_INVALID_DATA` when `data` cannot be
 * serialized.
 *
 * @example
 * ```ts
 * formatEvent({ event: 'tick', id: '7', data: { n: 7 } });
 * // 'event: tick\nid: 7\ndata: {"n":7}\n\n'
 * ```
 */
export function formatEvent<TEvents extends SseEventMap = SseEventMap>(
  message: SseMessage<TEvents> | string,
  options?: FormatOptions,
): string {
  if (typeof message === 'string') return dataLines(message) + '\n';
  if (message === null || typeof message !== 'object') {
    throw new SseError('ERR_SSE_INVALID_FIELD', 'A message must be a string or an object.');
  }
  const { comment, event, id, retry, data } = message as SseFields & {
    event?: unknown;
    data?: unknown;
  };
  let text = '';
  let dispatches = false;
  if (comment !== undefined) text += commentLines(comment);
  if (event !== undefined) {
    text += eventLine(event);
    dispatches = true;
  }
  if (id !== undefined) {
    text += idLine(id);
    dispatches = true;
  }
  if (retry !== undefined) text += retryLine(retry);
  if (data !== undefined) {
    text += dataLines(typeof data === 'string' ? data : serializeData(data, options?.serialize));
    dispatches = true;
  } else if (event !== undefined) {
    text += 'data: \n';
  }
  if (text === '') {
    throw new SseError('ERR_SSE_INVALID_FIELD', 'A message needs at least one of data, event, id, retry or comment.');
  }
  return dispatches ? text + '\n' : text;
}

/** Formats comment lines, with no blank line, so that no client sees an event. */
export function formatComment(text = ''): string {
  return commentLines(text);
}

/** Formats a `retry` line on its own: clients apply it at once, with no blank line needed. */
export function formatRetry(ms: number): string {
  return retryLine(ms);
}

function dataLines(text: string): string {
  if (!HAS_LINE_BREAK.test(text)) return 'data: ' + text + '\n';
  return 'data: ' + text.split(LINE_BREAK).join('\ndata: ') + '\n';
}

function commentLines(text: unknown): string {
  if (typeof text !== 'string') {
    throw new SseError('ERR_SSE_INVALID_FIELD', 'A comment must be a string.');
  }
  let lines = '';
  for (const line of text.split(LINE_BREAK)) lines += line === '' ? ':\n' : ': ' + line + '\n';
  return lines;
}

function eventLine(event: unknown): string {
  if (typeof event !== 'string' || event === '') {
    throw new SseError('ERR_SSE_INVALID_FIELD', 'The event name must be a non-empty string.');
  }
  if (HAS_LINE_BREAK.test(event)) {
    throw new SseError('ERR_SSE_INVALID_FIELD', 'The event name contains a line break, which would forge extra fields.');
  }
  // The default type needs no field: every client treats a missing `event:` as `message`.
  return event === 'message' ? '' : 'event: ' + event + '\n';
}

function idLine(id: unknown): string {
  if (typeof id === 'number') {
    if (!Number.isSafeInteger(id) || id < 0) {
      throw new SseError('ERR_SSE_INVALID_FIELD', `A numeric id must be a non-negative safe integer, not ${id}.`);
    }
    return 'id: ' + id + '\n';
  }
  if (typeof id !== 'string') {
    throw new SseError('ERR_SSE_INVALID_FIELD', 'An id must be a string or a number.');
  }
  if (!isValidEventId(id)) {
    throw new SseError(
      'ERR_SSE_INVALID_FIELD',
      /[\r\n\0]/.test(id)
        ? 'The id contains CR, LF or NUL, which would forge fields or be ignored by clients.'
        : 'The id must be printable ASCII, at most 128 characters, with no space at either end.',
    );
  }
  return 'id: ' + id + '\n';
}

function retryLine(ms: unknown): string {
  if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || ms < 0) {
    throw new SseError('ERR_SSE_INVALID_FIELD', `retry must be a non-negative integer, not ${String(ms)}.`);
  }
  return 'retry: ' + ms + '\n';
}

function serializeData(data: unknown, serialize: ((data: unknown) => string) | undefined): string {
  let text: unknown;
  try {
    text = (serialize ?? JSON.stringify)(data);
  } catch (cause) {
    throw new SseError('ERR_SSE_INVALID_DATA', 'The serializer threw on this data.', { cause });
  }
  if (typeof text !== 'string') {
    throw new SseError('ERR_SSE_INVALID_DATA', `The serializer returned ${typeof text}, not a string.`);
  }
  return text;
}

/** The comment a stream sends to keep an idle connection alive. */
export const HEARTBEAT = ': ping\n';
