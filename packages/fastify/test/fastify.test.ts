import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import request from 'supertest';
import { SseError } from '@ssekit/core';
import ssePlugin, { ssePlugin as namedPlugin } from '@ssekit/fastify';
import { readSse, readSseOverHttp2 } from '@ssekit/test-kit';

const urlOf = (app: { server: Pick<FastifyInstance['server'], 'address'> }) =>
  `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;

describe('@ssekit/fastify', () => {
  test('the default export and the named ssePlugin are one fastify-plugin', () => {
    expect(ssePlugin).toBe(namedPlugin);
    expect((ssePlugin as unknown as Record<symbol, unknown>)[Symbol.for('fastify.display-name')]).toBe('@ssekit/fastify');
  });

  test('await app.close() ends every open stream and returns promptly', async () => {
    const app = Fastify();
    await app.register(ssePlugin);
    app.get('/events', (_request, reply) => {
      void reply.sse.send('open');
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const readers = await Promise.all([1, 2, 3].map(() => readSse(`${urlOf(app)}/events`)));
    await Promise.all(readers.map((reader) => reader.waitForEvents(1)));
    // Without the plugin's preClose hook, close() waits for these streams forever.
    const closed = await Promise.race([
      app.close().then(() => 'closed'),
      new Promise((resolve) => setTimeout(() => resolve('still open after 3 s'), 3000)),
    ]);
    expect(closed).toBe('closed');
    await Promise.all(readers.map((reader) => reader.ended));
  });

  test("a failing piped source is logged through the request's own logger, with its request id", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const app = Fastify({ logger: { level: 'error', stream: { write: (line: string) => void lines.push(JSON.parse(line)) } } });
    await app.register(ssePlugin);
    app.get('/events', (_request, reply) => {
      void reply.sse.pipe(
        (async function* () {
          yield 'ok';
          throw new Error('the source broke');
        })(),
      );
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const reader = await readSse(`${urlOf(app)}/events`);
      await reader.ended;
      expect(reader.events.map((event) => event.data)).toEqual(['ok']);
      expect(lines).toEqual([
        expect.objectContaining({
          msg: 'ssekit: a piped source failed',
          reqId: expect.any(String),
          err: expect.objectContaining({ message: 'the source broke' }),
        }),
      ]);
    } finally {
      await app.close();
    }
  });

  test('app.close() sends the shutdown option’s last event and jittered retry to every stream', async () => {
    const app = Fastify();
    await app.register(ssePlugin, { shutdown: { message: { event: 'bye', data: 'restarting' }, retryMs: 2000, jitterMs: 1000 } });
    app.get('/events', (_request, reply) => {
      void reply.sse.send('open');
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const readers = await Promise.all([1, 2].map(() => readSse(`${urlOf(app)}/events`)));
    await Promise.all(readers.map((reader) => reader.waitForEvents(1)));
    expect(app.sseStreams.size).toBe(2);
    await app.close();
    for (const reader of readers) {
      await reader.ended;
      expect(reader.events.map((event) => event.event ?? 'message')).toEqual(['message', 'bye']);
      expect(reader.retries[0]).toBeGreaterThanOrEqual(2000);
      expect(reader.retries[0]).toBeLessThanOrEqual(3000);
    }
    expect(app.sseStreams.size).toBe(0);
  });

  test('an invalid shutdown message fails the registration', async () => {
    const app = Fastify();
    await expect(app.register(ssePlugin, { shutdown: { message: { event: 'x\ny', data: '' } } })).rejects.toThrow(SseError);
    await app.close().catch(() => {});
  });

  test('an async handler may send and return: the reply is hijacked, not sent twice', async () => {
    const app = Fastify();
    const errors: unknown[] = [];
    app.setErrorHandler((error, _request, reply) => {
      errors.push(error);
      void reply.send(error);
    });
    await app.register(ssePlugin);
    app.get('/events', async (_request, reply) => {
      await reply.sse.send({ event: 'a', data: '1' });
      await reply.sse.send({ event: 'b', data: '2' });
      reply.sse.close();
    });
    try {
      const response = await app.inject({ method: 'GET', url: '/events' });
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-type']).toBe('text/event-stream; charset=utf-8');
      expect(response.body).toBe('event: a\ndata: 1\n\nevent: b\ndata: 2\n\n');
      expect(errors).toEqual([]);
    } finally {
      await app.close();
    }
  });

  test('headers set by hooks and by reply.header before opening are kept', async () => {
    const app = Fastify();
    await app.register(ssePlugin);
    app.addHook('preHandler', async (_request, reply) => {
      reply.header('access-control-allow-origin', 'https://app.example');
    });
    app.get('/events', (_request, reply) => {
      reply.header('x-feed', 'prices');
      void reply.sse.send('x');
      reply.sse.close();
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const response = await request(urlOf(app)).get('/events');
      expect(response.headers['access-control-allow-origin']).toBe('https://app.example');
      expect(response.headers['x-feed']).toBe('prices');
      expect(response.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    } finally {
      await app.close();
    }
  });

  test('works on HTTP/2 (h2c) with no connection header', async () => {
    const app = Fastify({ http2: true });
    await app.register(ssePlugin);
    app.get('/events', (_request, reply) => {
      void reply.sse.send({ event: 'h2', id: '9', data: 'hello' });
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const reader = await readSseOverHttp2(urlOf(app), '/events');
      expect(reader.headers[':status']).toBe(200);
      expect(reader.headers['content-type']).toBe('text/event-stream; charset=utf-8');
      expect(reader.headers['connection']).toBeUndefined();
      await reader.waitForEvents(1);
      expect(reader.events).toEqual([{ event: 'h2', id: '9', data: 'hello' }]);
      reader.close();
    } finally {
      await app.close();
    }
  });

  test('invalid options fail the registration with ERR_SSE_INVALID_OPTION', async () => {
    const app = Fastify();
    await expect(app.register(ssePlugin, { maxBufferedBytes: -5 })).rejects.toThrow(SseError);
    await app.close().catch(() => {});
  });
});
