/**
 * Graceful shutdown, connection limits, event size limits and opt-in error events, on raw
 * node:http and every adapter, with real clients.
 */
import { EventSource } from 'eventsource';
import request from 'supertest';
import { SseError } from '@ssekit/core';
import { EARLIER_HEADER, TARGETS, eventually, readSse, startApp, type SseReader, type TestApp } from '@ssekit/test-kit';

describe.each(TARGETS)('on %s', (framework) => {
  let app: TestApp | undefined;
  const readers: SseReader[] = [];
  afterEach(async () => {
    for (const reader of readers.splice(0)) reader.close();
    await app?.close();
    app = undefined;
  });
  const open = async (headers: Record<string, string> = {}) => {
    const reader = await readSse(`${app!.url}/events`, { headers });
    readers.push(reader);
    return reader;
  };

  describe('graceful shutdown', () => {
    test('one call ends every open stream with a last event and a jittered retry, then the server closes', async () => {
      app = await startApp(framework, ({ stream }) => void stream.send('hello'));
      const clients = await Promise.all([1, 2, 3, 4, 5].map(() => open()));
      await Promise.all(clients.map((client) => client.waitForEvents(1)));
      expect(app.group.size).toBe(5);
      await app.group.shutdown({ message: { event: 'bye', data: 'restarting' }, retryMs: 1000, jitterMs: 4000 });
      await Promise.all(clients.map((client) => client.ended));
      expect(app.group.size).toBe(0);
      for (const client of clients) {
        expect(client.events.map((event) => event.event ?? 'message')).toEqual(['message', 'bye']);
        expect(client.retries).toHaveLength(1);
        expect(client.retries[0]).toBeGreaterThanOrEqual(1000);
        expect(client.retries[0]).toBeLessThanOrEqual(5000);
      }
      expect(app.streams.every((stream) => stream.closeReason === 'shutdown')).toBe(true);
      // The server's own close completes: no stream holds it open.
      const closing = app.close();
      app = undefined;
      await expect(closing).resolves.toBeUndefined();
    });

    test('a stream that opens during shutdown gets the goodbye and ends at once', async () => {
      app = await startApp(framework, ({ stream }) => void stream.send('hello'));
      await app.group.shutdown({ retryMs: 500 });
      const late = await open();
      await late.ended;
      expect(late.events).toEqual([]);
      expect(late.retries).toEqual([500]);
      expect(app.streams[0]!.closeReason).toBe('shutdown');
    });

    test('an invalid farewell is refused before any stream is touched', async () => {
      app = await startApp(framework, ({ stream }) => void stream.send('hello'));
      const client = await open();
      await client.waitForEvents(1);
      await expect(app.group.shutdown({ message: { event: 'a\nb', data: 'x' } })).rejects.toThrow(SseError);
      expect(app.streams[0]!.closed).toBe(false);
    });
  });

  describe('connection limits', () => {
    const byUser = { max: 2, key: (request: { headers: Record<string, unknown> }) => String(request.headers['x-user']) };

    test('past the limit, a stream is answered 429 with a JSON body before opening, and EventSource stops', async () => {
      app = await startApp(framework, ({ stream }) => void stream.send('in'), { limit: byUser });
      await Promise.all([open({ 'x-user': 'ann' }), open({ 'x-user': 'ann' }), open({ 'x-user': 'bob' })]);
      await eventually(() => app!.group.size === 3);
      const third = await request(app.url).get('/events').set('x-user', 'ann');
      expect(third.status).toBe(429);
      expect(third.headers['content-type']).toMatch(/^application\/json/);
      expect(third.body).toEqual({ error: 'too_many_streams', limit: 2 });
      expect(third.headers[EARLIER_HEADER.name]).toBe(EARLIER_HEADER.value);
      expect(app.group.count('ann')).toBe(2);
      // A native-style client treats the 429 as final: it does not retry.
      const source = new EventSource(`${app.url}/events`, {
        fetch: (input, init) => fetch(input, { ...init, headers: { ...(init?.headers as Record<string, string>), 'x-user': 'ann' } }),
      });
      await new Promise<void>((resolve) => (source.onerror = () => resolve()));
      expect(source.readyState).toBe(EventSource.CLOSED);
      source.close();
    });

    test('evict-oldest closes the key\u2019s oldest stream to make room', async () => {
      app = await startApp(framework, ({ stream }) => void stream.send('in'), { limit: { ...byUser, onExceed: 'evict-oldest' } });
      const first = await open({ 'x-user': 'ann' });
      await first.waitForEvents(1);
      const second = await open({ 'x-user': 'ann' });
      await second.waitForEvents(1);
      const third = await open({ 'x-user': 'ann' });
      await third.waitForEvents(1);
      await first.ended;
      expect(app.streams[0]!.closeReason).toBe('evicted');
      expect(app.group.count('ann')).toBe(2);
    });

    test('counters return to zero when everyone leaves', async () => {
      app = await startApp(framework, ({ stream }) => void stream.send('in'), { limit: byUser });
      const clients = await Promise.all([open({ 'x-user': 'ann' }), open({ 'x-user': 'ann' }), open({ 'x-user': 'bob' })]);
      await eventually(() => app!.group.size === 3);
      for (const client of clients) client.close();
      await eventually(() => app!.group.size === 0, 3000, 'every stream to leave');
      expect([app.group.count('ann'), app.group.count('bob')]).toEqual([0, 0]);
      const again = await open({ 'x-user': 'ann' });
      await again.waitForEvents(1);
    });
  });

  test('maxEventBytes rejects an oversized event with ERR_SSE_EVENT_TOO_LARGE; nothing is written and the stream stays open', async () => {
    const outcomes: unknown[] = [];
    app = await startApp(
      framework,
      async ({ stream }) => {
        await stream.send('small');
        try {
          void stream.send({ data: 'é'.repeat(600) }); // 1200 bytes of UTF-8 in 600 characters
          outcomes.push('sent');
        } catch (error) {
          outcomes.push((error as SseError).code);
        }
        await stream.send('after');
      },
      { options: { maxEventBytes: 1024 } },
    );
    const client = await open();
    await client.waitForEvents(2);
    expect(outcomes).toEqual(['ERR_SSE_EVENT_TOO_LARGE']);
    expect(client.events.map((event) => event.data)).toEqual(['small', 'after']);
    expect(app.streams[0]!.closed).toBe(false);
  });

  test('a piped source error reaches the client only when onError opts in', async () => {
    app = await startApp(
      framework,
      ({ stream }) =>
        void stream.pipe(
          (async function* () {
            yield 'ok';
            throw new Error('secret detail');
          })(),
        ),
      { options: { onError: (_error, stream) => void stream.send({ event: 'error', data: 'the feed failed; reconnecting' }) } },
    );
    const client = await open();
    await client.ended;
    expect(client.events.map((event) => [event.event, event.data])).toEqual([
      [undefined, 'ok'],
      ['error', 'the feed failed; reconnecting'],
    ]);
    expect(client.text()).not.toContain('secret');
  });
});
