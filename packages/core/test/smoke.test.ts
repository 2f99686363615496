import http from 'node:http';
import { EventSource } from 'eventsource';
import { createParser } from 'eventsource-parser';
import { createSseStream } from '@ssekit/core';

test('smoke', async () => {
  const server = http.createServer((req, res) => {
    const s = createSseStream(req, res);
    s.send({ event: 'a', data: 'x\ny', id: '1' });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as any;
  const es = new EventSource(`http://127.0.0.1:${port}/`);
  const got = await new Promise<any>((resolve) => es.addEventListener('a', (e) => resolve({ data: e.data, id: e.lastEventId })));
  es.close();
  expect(got).toEqual({ data: 'x\ny', id: '1' });
  expect(typeof createParser).toBe('function');
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
