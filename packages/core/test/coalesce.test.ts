/**
 * Write coalescing: events that reach one socket within one turn of the event loop leave in
 * one system write, not one each, without waiting any longer than that turn.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import { createChannel } from '@ssekit/core';
import { createSseStream } from '@ssekit/core/node';
import { readSse, serveHttp } from '@ssekit/test-kit';

/** Counts the writes a socket hands to the operating system. */
function countSystemWrites(socket: Socket) {
  const counted = socket as Socket & { _write: (...args: unknown[]) => unknown; _writev: (...args: unknown[]) => unknown };
  let writes = 0;
  const write = counted._write;
  const writev = counted._writev;
  counted._write = function (...args: unknown[]) {
    writes++;
    return write.apply(this, args);
  };
  counted._writev = function (...args: unknown[]) {
    writes++;
    return writev.apply(this, args);
  };
  return () => writes;
}

test('a burst of 200 events to one client leaves in a handful of system writes, all of them arriving', async () => {
  const channel = createChannel();
  let writes: (() => number) | undefined;
  const served = await serveHttp((req: http.IncomingMessage, res: http.ServerResponse) => {
    writes = countSystemWrites(req.socket);
    channel.subscribe(createSseStream(req, res, { keepAliveMs: 0 }));
  });
  try {
    const reader = await readSse(`${served.url}/events`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const before = writes!();
    // Each publish waits a process tick, as an async source does: Node's own write corking
    // lasts one tick only, so without ssekit's each event would be a system write of its own.
    for (let n = 1; n <= 200; n++) {
      await channel.publish({ data: `event ${n}` });
      await new Promise((resolve) => process.nextTick(resolve));
    }
    await reader.waitForEvents(200);
    expect(reader.events.map((event) => event.data)).toEqual(Array.from({ length: 200 }, (_, i) => `event ${i + 1}`));
    // The burst fits one high-water mark, so it leaves in one or two writes.
    expect(writes!() - before).toBeLessThanOrEqual(2);
    reader.close();
  } finally {
    await channel.close();
    await served.close();
  }
});

test('a lone event is not held back: it leaves within the same turn', async () => {
  let send: ((text: string) => Promise<boolean>) | undefined;
  const served = await serveHttp((req: http.IncomingMessage, res: http.ServerResponse) => {
    const stream = createSseStream(req, res, { keepAliveMs: 0 });
    stream.open();
    send = (text) => stream.send(text);
  });
  try {
    const reader = await readSse(`${served.url}/events`);
    const started = performance.now();
    await send!('now');
    await reader.waitForEvents(1, 1000);
    // No timer is involved: the event is flushed at the end of the current turn.
    expect(performance.now() - started).toBeLessThan(50);
    reader.close();
  } finally {
    await served.close();
  }
});
