import Koa from 'koa';
import compress from 'koa-compress';
import request from 'supertest';
import { SseError, type SseStream } from '@ssekit/core';
import { sse } from '@ssekit/koa';
import { eventually, readSse, serveHttp } from '@ssekit/test-kit';

describe('@ssekit/koa', () => {
  test('behind koa-compress, the first event arrives at once and uncompressed', async () => {
    const app = new Koa();
    app.use(compress({ threshold: 0 }));
    app.use(sse());
    app.use((ctx) => {
      void ctx.sse.send({ event: 'first', data: 'now' });
    });
    const server = await serveHttp(app.callback());
    try {
      const reader = await readSse(`${server.url}/events`, { headers: { 'accept-encoding': 'gzip, deflate, br' } });
      expect(reader.headers['content-encoding']).toBeUndefined();
      await reader.waitForEvents(1, 2000);
      expect(reader.events).toEqual([{ event: 'first', id: undefined, data: 'now' }]);
      reader.close();
    } finally {
      await server.close();
    }
  });

  test.each(['closes', 'resets'])('a client that %s mid-stream puts no error on app.on("error")', async (how) => {
    const app = new Koa();
    const errors: unknown[] = [];
    app.on('error', (error) => errors.push(error));
    let stream: SseStream | undefined;
    app.use(sse());
    app.use((ctx) => {
      stream = ctx.sse;
      const chunk = 'x'.repeat(8 * 1024);
      // Keep writing until the client is gone, so that writes race the disconnect.
      void (async () => {
        for (let i = 0; i < 5000 && !ctx.sse.closed; i++) await ctx.sse.send(chunk);
      })();
    });
    const server = await serveHttp(app.callback());
    try {
      const reader = await readSse(`${server.url}/events`);
      await reader.waitForEvents(3);
      if (how === 'resets') reader.reset();
      else reader.close();
      await eventually(() => stream?.closed === true, 3000, 'the stream to close');
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(stream!.closeReason).toBe('client');
      expect(errors).toEqual([]);
    } finally {
      await server.close();
    }
  });

  test('an error thrown by a handler after the stream opened still reaches app.on("error")', async () => {
    const app = new Koa();
    const errors: Error[] = [];
    app.on('error', (error: Error) => errors.push(error));
    app.use(sse());
    app.use(async (ctx) => {
      await ctx.sse.send('opened');
      throw new Error('handler bug');
    });
    const server = await serveHttp(app.callback());
    try {
      const reader = await readSse(`${server.url}/events`);
      await reader.waitForEvents(1);
      await eventually(() => errors.length === 1, 2000, 'the handler error');
      expect(errors[0]!.message).toBe('handler bug');
      reader.close();
    } finally {
      await server.close();
    }
  });

  test('a handler can still answer with ctx.status before the stream opens', async () => {
    const app = new Koa();
    app.use(sse());
    app.use((ctx) => {
      if (ctx.sse.lastEventId === undefined) ctx.status = 204;
    });
    const server = await serveHttp(app.callback());
    try {
      const response = await request(server.url).get('/events');
      expect(response.status).toBe(204);
      expect(response.headers['content-type']).toBeUndefined();
    } finally {
      await server.close();
    }
  });

  test('a failing piped source reaches app.on("error") with its ctx, and the stream closes', async () => {
    const app = new Koa();
    const reported: Array<{ error: unknown; path: string | undefined }> = [];
    app.on('error', (error, ctx) => reported.push({ error, path: ctx?.path }));
    app.use(sse());
    app.use((ctx) => {
      void ctx.sse.pipe(
        (async function* () {
          yield 'ok';
          throw new Error('the source broke');
        })(),
      );
    });
    const server = await serveHttp(app.callback());
    try {
      const reader = await readSse(`${server.url}/feed`);
      await reader.ended;
      expect(reader.events.map((event) => event.data)).toEqual(['ok']);
      expect(reported).toEqual([{ error: new Error('the source broke'), path: '/feed' }]);
    } finally {
      await server.close();
    }
  });

  test('an invalid option throws ERR_SSE_INVALID_OPTION when the middleware is made', () => {
    expect(() => sse({ keepAliveMs: Number.NaN })).toThrow(SseError);
    expect(() => sse({ keepAliveMs: Number.NaN })).toThrow(expect.objectContaining({ code: 'ERR_SSE_INVALID_OPTION' }));
  });
});
