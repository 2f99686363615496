import { createMemoryBackplane, createMemoryHistory, SseError, type BackplaneEntry } from '@ssekit/core';

const entry = (n: number, id = String(n)): BackplaneEntry => ({ id, position: n, event: undefined, data: `d${n}`, raw: true });

describe('createMemoryHistory', () => {
  test('keeps at most maxEvents, oldest out first, across many wraps of its ring', () => {
    const history = createMemoryHistory({ maxEvents: 3 });
    for (let n = 1; n <= 10; n++) history.append(entry(n));
    expect(history.has('7')).toBe(false);
    expect(history.has('8')).toBe(true);
    expect(history.after('8', 10)).toEqual({ position: 8, entries: [entry(9), entry(10)] });
    expect(history.after('7', 10)).toBeUndefined();
    expect(history.latest()).toEqual(entry(10));
  });

  test('after() returns at most limit entries, oldest first, and nothing after the newest', () => {
    const history = createMemoryHistory({ maxEvents: 100 });
    for (let n = 1; n <= 20; n++) history.append(entry(n));
    expect(history.after('5', 3)!.entries.map((e) => e.id)).toEqual(['6', '7', '8']);
    expect(history.after('20', 3)).toEqual({ position: 20, entries: [] });
    expect(history.after('nope', 3)).toBeUndefined();
  });

  test('drops events older than maxAgeMs', () => {
    let now = 1_000_000;
    const clock = jest.spyOn(Date, 'now').mockImplementation(() => now);
    try {
      const history = createMemoryHistory({ maxEvents: 100, maxAgeMs: 1000 });
      history.append(entry(1));
      now += 600;
      history.append(entry(2));
      now += 600; // entry 1 is now 1200 ms old, entry 2 is 600 ms old
      expect(history.after('1', 10)).toBeUndefined();
      expect(history.after('2', 10)).toEqual({ position: 2, entries: [] });
      now += 1000;
      expect(history.latest()).toBeUndefined();
      history.append(entry(3));
      expect(history.latest()).toEqual(entry(3));
      expect(history.after('3', 10)).toEqual({ position: 3, entries: [] });
    } finally {
      clock.mockRestore();
    }
  });

  test.each([
    ['maxEvents 0', { maxEvents: 0 }],
    ['maxEvents 1.5', { maxEvents: 1.5 }],
    ['maxAgeMs 0', { maxAgeMs: 0 }],
    ['maxAgeMs NaN', { maxAgeMs: Number.NaN }],
  ])('%s is rejected with ERR_SSE_INVALID_OPTION', (_name, options) => {
    expect(() => createMemoryHistory(options)).toThrow(expect.objectContaining({ code: 'ERR_SSE_INVALID_OPTION' }));
  });
});

describe('createMemoryBackplane', () => {
  const publishInput = (n: number, id?: string) => ({ id, event: 'e', data: String(n), raw: true, value: String(n) });

  test('assigns monotonic ids per channel and delivers in order, synchronously', async () => {
    const backplane = createMemoryBackplane();
    const seen: string[] = [];
    await backplane.subscribe('a', { entry: (e) => seen.push(`a:${e.id}`), gap() {} });
    await backplane.subscribe('b', { entry: (e) => seen.push(`b:${e.id}`), gap() {} });
    const ids = [backplane.publish('a', publishInput(1)), backplane.publish('a', publishInput(2)), backplane.publish('b', publishInput(3))];
    expect(seen).toEqual(['a:1', 'a:2', 'b:1']);
    await expect(Promise.all(ids)).resolves.toEqual(['1', '2', '1']);
  });

  test('rejects an id already in the history, and keeps the log unchanged', async () => {
    const backplane = createMemoryBackplane();
    await backplane.publish('a', publishInput(1, 'order-1'));
    await expect(backplane.publish('a', publishInput(2, 'order-1'))).rejects.toThrow(SseError);
    expect(backplane.replay('a', 'order-1', 10)).toEqual({ found: true, position: 1, entries: [] });
  });

  test('replay answers not found, with the newest entry, when the id is unknown or too far behind', async () => {
    const backplane = createMemoryBackplane();
    for (let n = 1; n <= 5; n++) await backplane.publish('a', publishInput(n));
    expect(backplane.replay('a', 'x', 10)).toEqual({ found: false, latest: { id: '5', position: 5 } });
    expect(backplane.replay('a', '1', 3)).toEqual({ found: false, latest: { id: '5', position: 5 } });
    const replay = backplane.replay('a', '2', 3);
    expect(replay).toMatchObject({ found: true, position: 2 });
    expect((replay as unknown as { entries: BackplaneEntry[] }).entries.map((e) => e.id)).toEqual(['3', '4', '5']);
    expect(backplane.replay('empty', 'x', 3)).toEqual({ found: false, latest: undefined });
  });
});
