import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { type SseStream } from '@ssekit/core';
import { createSseStream } from '@ssekit/core/node';
import { eventually, readSseOverHttp2 } from '@ssekit/test-kit';

describe('node:http2 in compatibility mode', () => {
  let server: http2.Http2Server;
  const streams: SseStream[] = [];

  beforeAll(async () => {
    server = http2.createServer((req, res) => {
      res.setHeader('x-request-id', 'h2-1');
      const stream = createSseStream(req, res);
      streams.push(stream);
      void stream.send({ event: 'hello', id: '1', data: 'over h2\nsecond line' });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test('sends the SSE headers without the connection header HTTP/2 forbids, and events parse', async () => {
    const { port } = server.address() as AddressInfo;
    const reader = await readSseOverHttp2(`http://127.0.0.1:${port}`, '/events');
    expect(reader.headers[':status']).toBe(200);
    expect(reader.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(reader.headers['cache-control']).toBe('no-cache, no-transform');
    expect(reader.headers['x-request-id']).toBe('h2-1');
    expect(reader.headers['connection']).toBeUndefined();
    await reader.waitForEvents(1);
    expect(reader.events).toEqual([{ event: 'hello', id: '1', data: 'over h2\nsecond line' }]);
    const stream = streams.at(-1)!;
    reader.close();
    await eventually(() => stream.closed, 3000, 'the stream to see the client leave');
    expect(stream.closeReason).toBe('client');
    await expect(stream.send('late')).resolves.toBe(false);
  });
});
