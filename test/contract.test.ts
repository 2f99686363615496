/**
 * The adapter contract: one suite, run over raw node:http, Express, Fastify and Koa on real
 * ports with real clients. Whatever a handler does through `stream`, every framework must put
 * the same bytes and headers on the wire and clean up the same way.
 */
import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import request from 'supertest';
import { EventSource } from 'eventsource';
import { SseError, type SseStream } from '@ssekit/core';
import { EARLIER_HEADER, TARGETS, eventually, readSse, startApp, type TestApp, type TestRoute } from '@ssekit/test-kit';

describe.each(TARGETS)('contract on %s', (framework) => {
  let app: TestApp | undefined;
  const start = async (route: TestRoute, options?: Parameters<typeof startApp>[2]) => {
    app = await startApp(framework, route, options);
    return app;
  };
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  describe('headers and lazy open', () => {
    test('an event stream answers 200 with the SSE headers and keeps headers set earlier', async () => {
      const { url } = await start(({ stream }) => {
        void stream.send('hello');
        stream.close();
      });
      const response = await request(url).get('/events');
      expect(response.status).toBe(200);
      expect(response.headers['content-type']).toBe('text/event-stream; charset=utf-8');
      expect(response.headers['cache-control']).toBe('no-cache, no-transform');
      expect(response.headers['x-accel-buffering']).toBe('no');
      expect(response.headers['connection']).toBe('keep-alive');
      expect(response.headers['content-length']).toBeUndefined();
      expect(response.headers[EARLIER_HEADER.name]).toBe(EARLIER_HEADER.value);
      expect(response.text).toBe('data: hello\n\n');
    });

    test.each([401, 204])('a handler can still answer %d before the stream opens', async (status) => {
      const { url, streams } = await start(({ stream, reject }) => {
        expect(stream.opened).toBe(false);
        reject(status, status === 204 ? '' : 'who are you?');
      });
      const response = await request(url).get('/events');
      expect(response.status).toBe(status);
      expect(response.headers['content-type'] ?? '').not.toContain('text/event-stream');
      if (status === 401) expect(response.text).toBe('who are you?');
      await eventually(() => streams[0]!.closed, 2000, 'the unused stream to close');
      expect(streams[0]!.opened).toBe(false);
    });

    test('open() flushes the head at once, before any event', async () => {
      const { url } = await start(({ stream }) => stream.open());
      const reader = await readSse(`${url}/events`);
      expect(reader.status).toBe(200);
      expect(reader.headers['content-type']).toBe('text/event-stream; charset=utf-8');
      expect(reader.text()).toBe('');
      reader.close();
    });

    test('retryMs goes out with the head', async () => {
      const { url } = await start(({ stream }) => stream.open(), { options: { retryMs: 2500 } });
      const reader = await readSse(`${url}/events`);
      await reader.waitFor(() => reader.retries.length === 1);
      expect(reader.retries).toEqual([2500]);
      reader.close();
    });
  });

  describe('the wire', () => {
    test('events go out byte for byte as the serializer defines them', async () => {
      const { url } = await start(async ({ stream }) => {
        await stream.send({ event: 'greeting', id: '1', data: 'line one\r\nline two\rline three\nline four' });
        await stream.send({ data: ' leading space' });
        await stream.send({ data: '' });
        await stream.send({ id: 2, data: { json: true } });
        await stream.comment('a\nb');
        await stream.retry(1000);
        stream.close();
      });
      const response = await request(url).get('/events');
      expect(response.text).toBe(
        'event: greeting\nid: 1\ndata: line one\ndata: line two\ndata: line three\ndata: line four\n\n' +
          'data:  leading space\n\n' +
          'data: \n\n' +
          'id: 2\ndata: {"json":true}\n\n' +
          ': a\n: b\n' +
          'retry: 1000\n',
      );
      expect(response.text).not.toContain('\r');
    });

    test('the eventsource package parses exactly what the handler sent', async () => {
      const sent = [
        { event: 'tick', id: 'a-1', data: 'plain' },
        { event: 'tick', id: 'a-2', data: 'two\nlines' },
        { event: 'tick', id: 'a-3', data: '  spaced  ' },
        { event: 'tick', id: 'a-4', data: 'unicode ✓ \u2028 \u0085 end' },
        { event: 'tick', id: 'a-5', data: '' },
      ];
      const { url } = await start(async ({ stream }) => {
        for (const message of sent) await stream.send(message);
      });
      const source = new EventSource(`${url}/events`);
      const received: Array<{ data: string; id: string }> = [];
      await new Promise<void>((resolve, reject) => {
        source.addEventListener('tick', (event) => {
          received.push({ data: event.data, id: event.lastEventId });
          if (received.length === sent.length) resolve();
        });
        source.onerror = () => reject(new Error('EventSource failed'));
      });
      source.close();
      expect(received).toEqual(sent.map(({ data, id }) => ({ data, id })));
    });

    test('a field that could forge others throws SseError, writes nothing, and the stream stays usable', async () => {
      const attempts: unknown[] = [];
      const { url } = await start(async ({ stream }) => {
        await stream.send('before');
        for (const message of [
          { event: 'x\nevent: admin', data: 'forged' },
          { id: '1\n\ndata: forged', data: 'x' },
          { id: 'bad\0id', data: 'x' },
          { retry: -1 },
        ]) {
          try {
            void stream.send(message);
            attempts.push('no error');
          } catch (error) {
            attempts.push(error instanceof SseError ? error.code : error);
          }
        }
        await stream.send('after');
        stream.close();
      });
      const response = await request(url).get('/events');
      expect(attempts).toEqual(Array(4).fill('ERR_SSE_INVALID_FIELD'));
      expect(response.text).toBe('data: before\n\ndata: after\n\n');
    });
  });

  describe('keep-alive', () => {
    test('an idle stream gets heartbeat comments, which dispatch no event', async () => {
      const { url } = await start(({ stream }) => stream.open(), { options: { keepAliveMs: 40 } });
      const reader = await readSse(`${url}/events`);
      await reader.waitFor(() => reader.comments.length >= 3, 3000);
      expect(reader.events).toEqual([]);
      expect(reader.text()).toMatch(/^(: ping\n){3,}$/);
      reader.close();
    });

    test('a busy stream gets no heartbeat', async () => {
      const { url } = await start(
        async ({ stream }) => {
          for (let i = 0; i < 30 && !stream.closed; i++) {
            await stream.send({ data: String(i) });
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
          stream.close();
        },
        { options: { keepAliveMs: 150 } },
      );
      const reader = await readSse(`${url}/events`);
      await reader.ended;
      expect(reader.events).toHaveLength(30);
      expect(reader.comments).toEqual([]);
    });

    test('keepAliveMs: 0 turns heartbeats off', async () => {
      const { url, streams } = await start(({ stream }) => stream.open(), { options: { keepAliveMs: 0 } });
      const reader = await readSse(`${url}/events`);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(streams[0]!.opened).toBe(true);
      expect(reader.text()).toBe('');
      reader.close();
    });
  });

  describe('Last-Event-ID', () => {
    const echo: TestRoute = ({ stream }) => {
      void stream.send({ data: JSON.stringify(stream.lastEventId ?? null) });
      stream.close();
    };

    test.each([
      ['a plain id', '42', '42'],
      ['an id with inner spaces', 'a b', 'a b'],
      ['no header', undefined, null],
      ['an id that looks like a prototype key', '__proto__', '__proto__'],
      ['a tab inside is not an id of ours', 'a\tb', null],
      ['an oversized id', 'x'.repeat(129), null],
      ['raw UTF-8 bytes', Buffer.from('é', 'utf8').toString('latin1'), null],
    ])('%s', async (_name, header, expected) => {
      const { url } = await start(echo);
      let call = request(url).get('/events');
      if (header !== undefined) call = call.set('last-event-id', header);
      const response = await call;
      expect(JSON.parse(response.text.slice('data: '.length))).toEqual(expected);
    });
  });

  describe('disconnect and close', () => {
    test('a client leaving closes the stream, aborts its signal, and settles pending sends', async () => {
      let pending: Promise<boolean> | undefined;
      const { url, streams } = await start(({ stream }) => {
        stream.open();
      });
      const reader = await readSse(`${url}/events`);
      await eventually(() => streams.length === 1);
      const stream = streams[0]!;
      const aborted = new Promise<void>((resolve) => stream.signal.addEventListener('abort', () => resolve()));
      const reasons: string[] = [];
      stream.onClose((reason) => reasons.push(reason));
      // A paused client lets the socket fill, so that a send is left waiting for drain.
      reader.pause();
      const big = 'x'.repeat(64 * 1024);
      for (let i = 0; i < 200 && !pending; i++) {
        const sent = stream.send(big);
        if ((await Promise.race([sent, new Promise((resolve) => setTimeout(() => resolve('waiting'), 20))])) === 'waiting') pending = sent;
      }
      expect(pending).toBeDefined();
      reader.close();
      await aborted;
      await expect(pending).resolves.toBe(false);
      expect(stream.closed).toBe(true);
      expect(stream.closeReason).toBe('client');
      expect(reasons).toEqual(['client']);
      expect(app!.errors).toEqual([]);
    });

    test('send, comment and retry after close resolve false and never throw', async () => {
      const { url, streams } = await start(({ stream }) => stream.close());
      await request(url).get('/events');
      const stream = streams[0]!;
      expect(stream.closed).toBe(true);
      expect(stream.closeReason).toBe('server');
      await expect(stream.send('late')).resolves.toBe(false);
      await expect(stream.comment('late')).resolves.toBe(false);
      await expect(stream.retry(10)).resolves.toBe(false);
      expect(stream.signal.aborted).toBe(true);
      stream.close();
    });

    test('close() ends the response for the client', async () => {
      const { url } = await start(async ({ stream }) => {
        await stream.send('only');
        stream.close();
      });
      const reader = await readSse(`${url}/events`);
      await reader.ended;
      expect(reader.events.map((event) => event.data)).toEqual(['only']);
    });

    test('streams make no keep-alive timer of their own: one shared timer serves them all', async () => {
      const keepAliveMs = 60_000;
      const armed = jest.spyOn(global, 'setTimeout');
      const ticking = jest.spyOn(global, 'setInterval');
      try {
        const { url, streams } = await start(({ stream }) => stream.open(), { options: { keepAliveMs } });
        const readers = await Promise.all([1, 2, 3].map(() => readSse(`${url}/events`)));
        await eventually(() => streams.length === 3 && streams.every((stream) => stream.opened));
        expect(armed.mock.calls.filter((call) => call[1] === keepAliveMs)).toEqual([]);
        // At most one wheel timer: none when an earlier suite's wheel for this period still ticks.
        expect(ticking.mock.calls.filter((call) => call[1] === keepAliveMs / 5).length).toBeLessThanOrEqual(1);
        for (const reader of readers) reader.close();
        await eventually(() => streams.every((stream) => stream.closed));
      } finally {
        armed.mockRestore();
        ticking.mockRestore();
      }
    });
  });

  describe('backpressure', () => {
    test('send waits for the socket to drain, and every event arrives in order', async () => {
      const count = 400;
      const chunk = 'y'.repeat(16 * 1024);
      let waited = 0;
      const { url } = await start(
        async ({ stream }) => {
          for (let i = 0; i < count; i++) {
            const sent = stream.send({ id: i, data: chunk });
            if ((await Promise.race([sent, Promise.resolve('pending')])) === 'pending') waited++;
            if (!(await sent)) return;
          }
          stream.close();
        },
        { options: { maxBufferedBytes: 4 * 1024 * 1024 } },
      );
      const reader = await readSse(`${url}/events`);
      reader.pause();
      await new Promise((resolve) => setTimeout(resolve, 300));
      reader.resume();
      await reader.ended;
      expect(waited).toBeGreaterThan(0);
      expect(reader.events.map((event) => Number(event.id))).toEqual(Array.from({ length: count }, (_, i) => i));
    });

    test('a client that stops reading is cut off at maxBufferedBytes, with reason overflow', async () => {
      const maxBufferedBytes = 256 * 1024;
      const chunkBytes = 32 * 1024;
      let peak = 0;
      let stream: SseStream | undefined;
      let clientPaused!: () => void;
      const paused = new Promise<void>((resolve) => (clientPaused = resolve));
      const { url } = await start(
        async (context) => {
          stream = context.stream;
          await stream.send('start');
          await paused;
          const chunk = 'z'.repeat(chunkBytes);
          // Fire and forget: a publisher that ignores backpressure must still be bounded.
          for (let i = 0; i < 2000 && !stream.closed; i++) {
            void stream.send(chunk);
            peak = Math.max(peak, context.request.socket.writableLength);
            if (i % 50 === 49) await new Promise((resolve) => setTimeout(resolve, 5));
          }
        },
        { options: { maxBufferedBytes } },
      );
      const reader = await readSse(`${url}/events`);
      await reader.waitForEvents(1);
      reader.pause();
      clientPaused();
      await eventually(() => stream?.closed === true, 10_000, 'the slow stream to close');
      expect(stream!.closeReason).toBe('overflow');
      expect(peak).toBeGreaterThan(0);
      expect(peak).toBeLessThanOrEqual(maxBufferedBytes + chunkBytes + 1024);
      // The connection's end sits behind the bytes the kernel still holds for this client.
      reader.resume();
      await reader.ended;
    });
    test('one event larger than maxBufferedBytes still reaches a client that reads', async () => {
      const big = 'b'.repeat(400 * 1024);
      const { url, streams } = await start(
        async ({ stream }) => {
          await stream.send({ data: big });
          await stream.send('after');
          stream.close();
        },
        { options: { maxBufferedBytes: 64 * 1024 } },
      );
      const reader = await readSse(`${url}/events`);
      await reader.ended;
      expect(reader.events.map((event) => event.data.length)).toEqual([big.length, 'after'.length]);
      expect(streams[0]!.closeReason).toBe('server');
    });
  });

  describe('pipe', () => {
    test('pipe sends every message of an async iterable, then ends the stream', async () => {
      const { url } = await start(({ stream }) => {
        void stream.pipe(
          (async function* () {
            for (let i = 1; i <= 5; i++) yield { event: 'n', id: i, data: i };
          })(),
        );
      });
      const reader = await readSse(`${url}/events`);
      await reader.ended;
      expect(reader.events.map((event) => [event.event, event.id, event.data])).toEqual(
        [1, 2, 3, 4, 5].map((i) => ['n', String(i), String(i)]),
      );
    });

    test('a client leaving stops an idle source through return()', async () => {
      let finished = false;
      let piped: Promise<boolean> | undefined;
      const { url } = await start(({ stream }) => {
        piped = stream.pipe(
          (async function* () {
            try {
              yield 'first';
              await new Promise(() => {}); // a source that waits forever for its next message
            } finally {
              finished = true;
            }
          })(),
        );
      });
      const reader = await readSse(`${url}/events`);
      await reader.waitForEvents(1);
      expect(finished).toBe(false);
      reader.close();
      await expect(piped).resolves.toBe(false);
      // An async generator parked on an await runs its finally only once that await settles;
      // what pipe owes is the return() call, which an iterator object shows directly below.
    });

    test('return() reaches a hand-written iterator as soon as the client leaves', async () => {
      const returned = jest.fn(async () => ({ done: true as const, value: undefined }));
      let piped: Promise<boolean> | undefined;
      const { url } = await start(({ stream }) => {
        let sentFirst = false;
        piped = stream.pipe({
          [Symbol.asyncIterator]: () => ({
            next: () =>
              sentFirst
                ? new Promise<IteratorResult<string>>(() => {})
                : ((sentFirst = true), Promise.resolve({ done: false, value: 'first' })),
            return: returned,
          }),
        });
      });
      const reader = await readSse(`${url}/events`);
      await reader.waitForEvents(1);
      expect(returned).not.toHaveBeenCalled();
      reader.close();
      await expect(piped).resolves.toBe(false);
      expect(returned).toHaveBeenCalledTimes(1);
    });

    test('pipe from an EventEmitter sends each event and removes its listener when the client leaves', async () => {
      const emitter = new EventEmitter();
      let piped: Promise<boolean> | undefined;
      const { url } = await start(({ stream }) => {
        piped = stream.pipe(emitter, 'price');
      });
      const reader = await readSse(`${url}/events`);
      await eventually(() => emitter.listenerCount('price') === 1);
      emitter.emit('price', { event: 'price', data: { value: 1 } });
      emitter.emit('price', { event: 'price', data: { value: 2 } });
      await reader.waitForEvents(2);
      expect(reader.events.map((event) => event.data)).toEqual(['{"value":1}', '{"value":2}']);
      reader.close();
      await expect(piped).resolves.toBe(false);
      expect(emitter.listenerCount('price')).toBe(0);
    });

    test('pipe from an object-mode Readable honours backpressure and destroys it when the client leaves', async () => {
      let produced = 0;
      const readable = new Readable({
        objectMode: true,
        highWaterMark: 4,
        read() {
          produced++;
          this.push({ id: produced, data: 'r'.repeat(1024) });
        },
      });
      const { url } = await start(({ stream }) => void stream.pipe(readable));
      const reader = await readSse(`${url}/events`);
      await reader.waitForEvents(10);
      reader.pause();
      await new Promise((resolve) => setTimeout(resolve, 200));
      const producedWhilePaused = produced;
      await new Promise((resolve) => setTimeout(resolve, 200));
      // A paused client stops the source once the socket is full: production levels off.
      expect(produced).toBe(producedWhilePaused);
      reader.close();
      await eventually(() => readable.destroyed, 3000, 'the Readable to be destroyed');
    });

    test('a failing source reaches onError and closes the stream without leaking the message', async () => {
      const reported: unknown[] = [];
      const { url, streams } = await start(
        ({ stream }) => {
          void stream.pipe(
            (async function* () {
              yield 'ok';
              throw new Error('database password is hunter2');
            })(),
          );
        },
        { options: { onError: (error) => reported.push(error) } },
      );
      const reader = await readSse(`${url}/events`);
      await reader.ended;
      expect(reader.events.map((event) => event.data)).toEqual(['ok']);
      expect(reader.text()).not.toContain('hunter2');
      expect(reported).toHaveLength(1);
      expect(streams[0]!.closeReason).toBe('error');
    });
  });
});
