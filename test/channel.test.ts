/**
 * Channels over real sockets, on raw node:http and every adapter: broadcast, resume after
 * Last-Event-ID with nothing lost or repeated while publishers keep going, authorization that
 * holds for replay, and slow clients that are cut off and then catch up.
 */
import { EventSource } from 'eventsource';
import { createChannel, type Channel } from '@ssekit/core';
import { TARGETS, eventually, readSse, startApp, type SseReader, type TestApp } from '@ssekit/test-kit';

/** A small deterministic generator, so that a failing run can be replayed exactly. */
function seeded(seed: number) {
  return () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
}

describe.each(TARGETS)('channels on %s', (framework) => {
  let app: TestApp | undefined;
  let channel: Channel<any> | undefined;
  afterEach(async () => {
    await channel?.close();
    await app?.close();
    app = channel = undefined;
  });

  test('clients that drop and reconnect at random moments end with every event exactly once, in order', async () => {
    const random = seeded(TARGETS.indexOf(framework) + 1);
    const feed = (channel = createChannel({ history: { maxEvents: 5000 } }));
    app = await startApp(framework, ({ stream }) => feed.subscribe(stream));
    const url = `${app.url}/events`;
    const total = 400;
    const clients = Array.from({ length: 6 }, () => ({
      seen: [] as string[],
      lastEventId: undefined as string | undefined,
      reader: undefined as SseReader | undefined,
      connects: 0,
    }));
    const log = (client: (typeof clients)[number]) => client.seen.concat(client.reader!.events.map((event) => event.id!));
    const reconnect = async (client: (typeof clients)[number]) => {
      if (client.reader) {
        client.seen = log(client);
        // As a browser does: the last id committed, even by a block that carried no event.
        client.lastEventId = client.reader.lastEventId() ?? client.lastEventId;
        client.reader.close();
      }
      const { lastEventId } = client;
      client.reader = await readSse(url, { headers: lastEventId ? { 'last-event-id': lastEventId } : {} });
      client.connects++;
    };
    await Promise.all(clients.map(reconnect));
    await eventually(() => feed.size === clients.length, 3000, 'every client to subscribe');

    // Two publishers race each other while clients drop and come back.
    let published = 0;
    const publisher = async () => {
      while (published < total) {
        published++;
        await feed.publish({ event: 'n', data: { at: published } });
        if (random() < 0.3) await new Promise((resolve) => setTimeout(resolve, 1));
      }
    };
    const churn = async () => {
      while (published < total) {
        await new Promise((resolve) => setTimeout(resolve, 2 + random() * 8));
        await reconnect(clients[Math.floor(random() * clients.length)]!);
      }
    };
    await Promise.all([publisher(), publisher(), churn()]);

    await eventually(() => clients.every((client) => log(client).length >= total), 10_000, 'every client to catch up').catch(
      (error: Error) => {
        const behind = clients.map((client) => `${client.connects} connects, ${log(client).length} events, last ${log(client).at(-1)}`);
        throw new Error(`${error.message}: ${behind.join('; ')}`);
      },
    );
    const expected = Array.from({ length: total }, (_, i) => String(i + 1));
    let lost = 0;
    let duplicated = 0;
    for (const client of clients) {
      const seen = log(client);
      lost += expected.filter((id) => !seen.includes(id)).length;
      duplicated += seen.length - new Set(seen).size;
      expect(seen).toEqual(expected);
    }
    const reconnects = clients.reduce((sum, client) => sum + client.connects - 1, 0);
    expect(reconnects).toBeGreaterThan(5);
    expect({ lost, duplicated }).toEqual({ lost: 0, duplicated: 0 });
    console.info(
      `[${framework}] ${clients.length} clients, ${total} events, ${reconnects} reconnects: lost ${lost}, duplicated ${duplicated}`,
    );
  });

  test('the eventsource package reconnects by itself after the server drops it, and misses nothing', async () => {
    const feed = (channel = createChannel());
    let connections = 0;
    app = await startApp(
      framework,
      ({ stream }) => {
        connections++;
        feed.subscribe(stream);
        // Drop the first connection mid-stream, as a deploy or a proxy would.
        if (connections === 1) setTimeout(() => stream.close(), 30);
      },
      { options: { retryMs: 20 } },
    );
    const source = new EventSource(`${app.url}/events`);
    const received: string[] = [];
    source.addEventListener('n', (event) => received.push(event.lastEventId));
    await new Promise<void>((resolve) => source.addEventListener('open', () => resolve(), { once: true }));
    for (let n = 1; n <= 60; n++) {
      await feed.publish({ event: 'n', data: n });
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    await eventually(() => received.length >= 60, 5000, 'all 60 events');
    source.close();
    expect(connections).toBeGreaterThanOrEqual(2);
    expect(received).toEqual(Array.from({ length: 60 }, (_, i) => String(i + 1)));
  });

  test('a filter holds across replay: another user\u2019s Last-Event-ID reveals none of their events', async () => {
    const typed = (channel = createChannel<{ note: { user: string; text: string } }>());
    app = await startApp(framework, ({ stream, request }) => {
      const user = request.headers['x-user'];
      typed.subscribe(stream, { filter: (event) => event.data.user === user });
    });
    const aliceId = await typed.publish({ event: 'note', data: { user: 'alice', text: 'alice-secret-1' } });
    await typed.publish({ event: 'note', data: { user: 'bob', text: 'bob-1' } });
    await typed.publish({ event: 'note', data: { user: 'alice', text: 'alice-secret-2' } });
    const bob = await readSse(`${app.url}/events`, { headers: { 'x-user': 'bob', 'last-event-id': aliceId } });
    await bob.waitForEvents(1);
    await typed.publish({ event: 'note', data: { user: 'alice', text: 'alice-secret-3' } });
    await typed.publish({ event: 'note', data: { user: 'bob', text: 'bob-2' } });
    await bob.waitForEvents(2);
    expect(bob.events.map((event) => JSON.parse(event.data).text)).toEqual(['bob-1', 'bob-2']);
    expect(bob.text()).not.toContain('alice');
    bob.close();
  });

  test('a client that stops reading is cut off, the others are not slowed, and its reconnect fills the gap', async () => {
    const feed = (channel = createChannel({ history: { maxEvents: 10_000 } }));
    app = await startApp(framework, ({ stream }) => feed.subscribe(stream), { options: { maxBufferedBytes: 256 * 1024 } });
    const url = `${app.url}/events`;
    const readers = await Promise.all([1, 2, 3].map(() => readSse(url)));
    await eventually(() => feed.size === 3);
    const [slow, ...fast] = readers as [SseReader, ...SseReader[]];
    const payload = 'p'.repeat(2000);
    await feed.publish({ data: payload });
    await slow.waitForEvents(1);
    slow.pause();
    const total = 5000; // ~10 MB: far past what the socket buffers of a paused client hold
    for (let n = 2; n <= total; n++) {
      await feed.publish({ data: payload });
      // Bursts of 40 KB: well within the bound for a client that reads.
      if (n % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
    }
    await Promise.all(fast.map((reader) => reader.waitForEvents(total, 10_000)));
    const slowStream = app.streams[0]!;
    await eventually(() => slowStream.closed, 5000, 'the slow stream to be cut off');
    expect(slowStream.closeReason).toBe('overflow');
    // The slow client reads what reached it, then reconnects from its last id.
    slow.resume();
    await slow.ended;
    const lastSeen = slow.events.at(-1)!.id!;
    expect(Number(lastSeen)).toBeLessThan(total);
    const again = await readSse(url, { headers: { 'last-event-id': lastSeen } });
    await again.waitForEvents(total - Number(lastSeen), 10_000);
    const all = [...slow.events, ...again.events].map((event) => event.id);
    expect(all).toEqual(Array.from({ length: total }, (_, i) => String(i + 1)));
    for (const reader of [...fast, again]) reader.close();
  });
});
