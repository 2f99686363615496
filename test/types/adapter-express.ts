/**
 * @ssekit/express augments Express's types, so handlers reach `res.sse` with no cast. Also
 * type-checked under Express 4's types (test/types/legacy).
 */
import express from 'express';
import type { Request, Response } from 'express';
import type { SseStream } from '@ssekit/core';
import { sse as expressSse } from '@ssekit/express';
import type { Equal, Expect } from './assert.js';

type MyEvents = { tick: { n: number }; message: string };

// Express: Response.sse
const app = express();
app.get('/events', expressSse({ keepAliveMs: 20_000 }), (req, res) => {
  void res.sse.send({ event: 'hello', data: { at: Date.now() } });
  void res.sse.send('plain text');
  // @ts-expect-error res.sse is an SseStream, not any
  res.sse.notAMethod();
});
function expressHandler(req: Request, res: Response): void {
  void res.sse.send({ event: 'tick', data: 1 });
  res.sse.close();
  type _sse = Expect<Equal<typeof res.sse, SseStream<any>>>;
  // Narrowing the untyped stream to an event map needs no cast.
  const typed: SseStream<MyEvents> = res.sse;
  void typed.send({ event: 'tick', data: { n: 1 } });
  // @ts-expect-error tick carries { n: number }
  void typed.send({ event: 'tick', data: 'x' });
  // @ts-expect-error nope is not an event of MyEvents
  void typed.send({ event: 'nope', data: 1 });
}
app.get('/typed', expressHandler);
// @ts-expect-error options are checked
expressSse({ keepAliveMs: '20s' });
