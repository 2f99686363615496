import compression from 'compression';
import express from 'express';
import request from 'supertest';
import { SseError } from '@ssekit/core';
import { sse } from '@ssekit/express';
import { readSse, serveHttp } from '@ssekit/test-kit';

describe('@ssekit/express', () => {
  test('behind compression(), the first event arrives at once and uncompressed', async () => {
    const app = express();
    app.use(compression({ threshold: 0 }));
    app.get('/events', sse(), (_req, res) => {
      // The stream stays open: compression buffering the body would hold this event back.
      void res.sse.send({ event: 'first', data: 'now' });
    });
    const server = await serveHttp(app);
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

  test('mounted per route, res.sse exists only where sse() runs', async () => {
    const app = express();
    app.get('/events', sse(), (_req, res) => {
      void res.sse.send('routed');
      res.sse.close();
    });
    app.get('/plain', (_req, res) => void res.json({ hasSse: res.sse !== undefined }));
    const server = await serveHttp(app);
    try {
      expect((await request(server.url).get('/events')).text).toBe('data: routed\n\n');
      expect((await request(server.url).get('/plain')).body).toEqual({ hasSse: false });
    } finally {
      await server.close();
    }
  });

  test('a response whose head already went out cannot become a stream', async () => {
    const app = express();
    const codes: string[] = [];
    app.get('/events', sse(), (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' }).write('already answering');
      // Every attempt throws, not only the first: no event bytes ever land in this response.
      for (const attempt of [() => res.sse.send('too late'), () => res.sse.send('again'), () => res.sse.pipe(['x'])]) {
        try {
          void attempt();
        } catch (error) {
          codes.push((error as SseError).code);
        }
      }
      // close() stays safe: it leaves a response it does not own alone.
      res.sse.close();
      codes.push(res.sse.closeReason ?? 'open');
      res.end();
    });
    const server = await serveHttp(app);
    try {
      const response = await request(server.url).get('/events');
      expect(response.text).toBe('already answering');
      expect(codes).toEqual(['ERR_SSE_HEADERS_SENT', 'ERR_SSE_HEADERS_SENT', 'ERR_SSE_HEADERS_SENT', 'server']);
    } finally {
      await server.close();
    }
  });

  test('a stream on a response that already ended starts closed, and sends resolve false', async () => {
    const app = express();
    const outcomes: unknown[] = [];
    app.get('/events', sse(), async (_req, res) => {
      res.type('text/plain').send('answered');
      outcomes.push(res.sse.closed, res.sse.closeReason, await res.sse.send('too late'));
    });
    const server = await serveHttp(app);
    try {
      const response = await request(server.url).get('/events');
      expect(response.text).toBe('answered');
      expect(outcomes).toEqual([true, 'server', false]);
    } finally {
      await server.close();
    }
  });

  test.each([
    ['keepAliveMs', { keepAliveMs: -1 }],
    ['maxBufferedBytes', { maxBufferedBytes: 0 }],
    ['retryMs', { retryMs: 1.5 }],
  ])('an invalid %s throws ERR_SSE_INVALID_OPTION when the middleware is made', (_name, options) => {
    expect(() => sse(options)).toThrow(SseError);
    expect(() => sse(options)).toThrow(expect.objectContaining({ code: 'ERR_SSE_INVALID_OPTION' }));
  });
});
