/** The signatures of the core entry points: formatEvent, createSseStream and SseError. */
import http from 'node:http';
import http2 from 'node:http2';
import { formatComment, formatEvent, formatRetry, SseError, type SseErrorCode, type SseEventMap, type SseStream } from '@ssekit/core';
import { createSseStream } from '@ssekit/core/node';
import type { Equal, Expect } from './assert.js';

type Events = { tick: { n: number }; message: string };

// formatEvent: a message or a bare string in, text out.
type _formatReturns = Expect<Equal<ReturnType<typeof formatEvent>, string>>;
const text: string = formatEvent({ data: { any: 1 } });
formatEvent('bare string');
formatEvent({ event: 'x', id: 1, retry: 0, comment: 'c' });
formatEvent({ data: 1 }, { serialize: (data) => String(data) });
formatEvent<Events>({ event: 'tick', data: { n: 1 } });
// @ts-expect-error tick carries { n: number }
formatEvent<Events>({ event: 'tick', data: 'x' });
// @ts-expect-error a bare number is not a message
formatEvent(42);
// @ts-expect-error serialize must return a string
formatEvent({ data: 1 }, { serialize: () => 1 });
type _commentReturns = Expect<Equal<ReturnType<typeof formatComment>, string>>;
type _retryParameters = Expect<Equal<Parameters<typeof formatRetry>, [ms: number]>>;
formatComment();
// @ts-expect-error retry is a number
formatRetry('1000');
void text;

// createSseStream: node:http and node:http2 compatibility requests and responses.
http.createServer((req, res) => {
  const stream = createSseStream(req, res, { keepAliveMs: 10_000, retryMs: 2000, serialize: JSON.stringify });
  type _default = Expect<Equal<typeof stream, SseStream<SseEventMap>>>;
  void stream;
  const typed = createSseStream<Events>(req, res);
  type _typed = Expect<Equal<typeof typed, SseStream<Events>>>;
  void typed.send({ event: 'tick', data: { n: 1 } });
  // @ts-expect-error tick carries { n: number }
  void typed.send({ event: 'tick', data: 'x' });
  // @ts-expect-error keepAliveMs is a number of milliseconds
  createSseStream(req, res, { keepAliveMs: '15s' });
  // @ts-expect-error the response is required
  createSseStream(req);
});
http2.createServer((req, res) => {
  void createSseStream(req, res).send('over http2');
});

// SseError: a code from the union, and an optional cause.
type _code = Expect<Equal<SseError['code'], SseErrorCode>>;
type _codes = Expect<
  Equal<
    SseErrorCode,
    | 'ERR_SSE_INVALID_FIELD'
    | 'ERR_SSE_INVALID_DATA'
    | 'ERR_SSE_INVALID_OPTION'
    | 'ERR_SSE_HEADERS_SENT'
    | 'ERR_SSE_CLOSED'
    | 'ERR_SSE_EVENT_TOO_LARGE'
    | 'ERR_SSE_BACKPLANE_UNAVAILABLE'
  >
>;
const error = new SseError('ERR_SSE_INVALID_FIELD', 'message', { cause: new Error('cause') });
const isError: Error = error;
// @ts-expect-error not a code of the union
new SseError('ERR_SOMETHING_ELSE', 'message');
// @ts-expect-error the code is read-only
error.code = 'ERR_SSE_INVALID_DATA';
function narrow(thrown: unknown): SseErrorCode | undefined {
  return thrown instanceof SseError ? thrown.code : undefined;
}
void isError;
void narrow;
