/**
 * Hostile `Last-Event-ID` headers on raw node:http and every adapter: oversized values, raw UTF-8
 * bytes, prototype keys, numbers in every spelling JavaScript parses, edge spaces, an empty value
 * and a repeated header. Each must open a normal stream, reach the application as undefined or
 * as a valid id, replay at most a reset event (or, for an id a client can resume from, exactly
 * the events after it, once), pollute no prototype, and leave live delivery working.
 */
import net from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import vm from 'node:vm';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { createChannel, createMemoryBackplane, isValidEventId, type Channel } from '@ssekit/core';
import { readLastEventId } from '@ssekit/core/adapter';
import { FRAMEWORKS, eventually, readSse, startApp, type TestApp } from '@ssekit/test-kit';

/** How many events the channel holds before each hostile client connects: ids 1 to 20. */
const HISTORY = 20;
const historyIds = Array.from({ length: HISTORY }, (_, i) => String(i + 1));
/**
 * The ids a client can resume from: the in-memory backplane's origin id, which stands before
 * the first event (a client that subscribed before anything was published holds it), then
 * every event held.
 */
const { originId } = createMemoryBackplane();
const resumableIds = [...(originId === undefined ? [] : [originId]), ...historyIds];

/** How Node hands over a header sent as raw UTF-8 bytes: each byte as one latin1 character. */
const asNodeDecodes = (text: string) => Buffer.from(text, 'utf8').toString('latin1');

interface HostileCase {
  name: string;
  /** What the client sends: a value or repeated lines through Node's client, or raw bytes over a socket. */
  sent: string | string[] | Buffer;
  /** The header as Node hands it to the application. */
  arrives: string;
  /** What `stream.lastEventId` must read. */
  lastEventId: string | undefined;
}

const prototypeKeys = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'prototype'];
const numbers = ['NaN', '-1', '0', '1e309', 'Infinity', '-Infinity', '99999999999999999999999999', '0x10', '1.5', '5.0', '05', '+5'];
const pollution = ['{"__proto__":{"polluted":true}}', '__proto__[polluted]=true', 'constructor.prototype.polluted', '__proto__.polluted'];

const cases: HostileCase[] = [
  { name: 'an oversized value of 8 KB', sent: 'A'.repeat(8 * 1024), arrives: 'A'.repeat(8 * 1024), lastEventId: undefined },
  // Under Node's default 16 KB max header size, so no 431: the server must take it in its stride.
  { name: 'an oversized value of 15 KB', sent: '7'.repeat(15 * 1024), arrives: '7'.repeat(15 * 1024), lastEventId: undefined },
  { name: 'one character past the id limit', sent: '1'.repeat(129), arrives: '1'.repeat(129), lastEventId: undefined },
  { name: 'raw UTF-8 bytes of é', sent: Buffer.from('café', 'utf8'), arrives: asNodeDecodes('café'), lastEventId: undefined },
  { name: 'raw UTF-8 bytes of €', sent: Buffer.from('€5', 'utf8'), arrives: asNodeDecodes('€5'), lastEventId: undefined },
  { name: 'raw UTF-8 bytes of an emoji', sent: Buffer.from('🎉', 'utf8'), arrives: asNodeDecodes('🎉'), lastEventId: undefined },
  // Node's client takes a character up to U+00FF and sends it as one latin1 byte.
  { name: 'a latin1 byte', sent: 'caf\xe9', arrives: 'caf\xe9', lastEventId: undefined },
  ...[...prototypeKeys, ...numbers, ...pollution].map((value) => ({ name: value, sent: value, arrives: value, lastEventId: value })),
  // HTTP trims the edge spaces before anyone sees them; what is left names a held event.
  { name: "' 5 ' (edge spaces)", sent: ' 5 ', arrives: '5', lastEventId: '5' },
  { name: 'an empty value', sent: '', arrives: '', lastEventId: undefined },
  // Node joins a repeated header into one value: well formed, but it names no event.
  { name: 'a repeated header', sent: ['3', '7'], arrives: '3, 7', lastEventId: '3, 7' },
];

/**
 * What must reach the client before a live event published after it connects: nothing for an
 * absent id, exactly the events after a resumable one, and otherwise the reset event alone.
 */
function expectedBefore(lastEventId: string | undefined): EventSourceMessage[] {
  if (lastEventId === undefined) return [];
  const index = resumableIds.indexOf(lastEventId);
  if (index >= 0) {
    return resumableIds.slice(index + 1).map((id) => ({ id, event: 'history', data: id }));
  }
  return [{ id: String(HISTORY), event: 'reset', data: JSON.stringify({ lastEventId }) }];
}

/** The prototypes a hostile header could reach: this test's realm (where ssekit and the frameworks run) and Node's own (where its HTTP parser builds header objects). */
const prototypes = [Object.prototype, vm.runInThisContext('Object.prototype') as object];
const prototypeSnapshot = () => prototypes.map((prototype) => Reflect.ownKeys(prototype).map(String).sort());
const pristine = prototypeSnapshot();

describe('readLastEventId over the hostile values, as they arrive and as they were sent', () => {
  test.each(cases)('$name', ({ sent, arrives, lastEventId }) => {
    expect(readLastEventId(arrives)).toBe(lastEventId);
    const asString = Buffer.isBuffer(sent) ? sent.toString('utf8') : sent;
    const read = readLastEventId(asString);
    // Untrimmed, unjoined or undecoded, the value reads as absent or as itself, never as anything else.
    expect(read === undefined || (read === asString && isValidEventId(read))).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  test('the untrimmed, undecoded and unjoined forms read as absent', () => {
    expect(readLastEventId(' 5 ')).toBeUndefined();
    expect(readLastEventId('café')).toBeUndefined();
    expect(readLastEventId('€5')).toBeUndefined();
    expect(readLastEventId(['3', '7'])).toBeUndefined();
  });
});

interface HostileReader {
  readonly status: number;
  readonly contentType: string | undefined;
  readonly events: EventSourceMessage[];
  close(): void;
}

/**
 * Sends the request over a bare socket, so that the header carries exactly `lastEventId`'s
 * bytes, which Node's client would refuse or re-encode, and parses the chunked event stream.
 */
function readSseRaw(origin: string, lastEventId: Buffer): Promise<HostileReader> {
  const { hostname, port, host } = new URL(origin);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    socket.once('error', reject);
    socket.write(
      Buffer.concat([
        Buffer.from(`GET /events HTTP/1.1\r\nHost: ${host}\r\nAccept: text/event-stream\r\nLast-Event-ID: `, 'latin1'),
        lastEventId,
        Buffer.from('\r\n\r\n', 'latin1'),
      ]),
    );
    const events: EventSourceMessage[] = [];
    const parser = createParser({ onEvent: (event) => events.push(event) });
    const decoder = new StringDecoder('utf8');
    let buffered = Buffer.alloc(0);
    let head: { status: number; headers: Map<string, string> } | undefined;
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (!head) {
        const end = buffered.indexOf('\r\n\r\n');
        if (end < 0) return;
        const [statusLine, ...lines] = buffered.subarray(0, end).toString('latin1').split('\r\n');
        const headers = new Map(
          lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
        );
        head = { status: Number(statusLine!.split(' ')[1]), headers };
        buffered = buffered.subarray(end + 4);
        socket.off('error', reject);
        socket.on('error', () => {});
        resolve({ status: head.status, contentType: headers.get('content-type'), events, close: () => socket.destroy() });
      }
      if (head.headers.get('transfer-encoding') !== 'chunked') {
        parser.feed(decoder.write(buffered));
        buffered = Buffer.alloc(0);
        return;
      }
      // Chunked transfer coding: a hex size line, that many bytes, then CRLF.
      for (;;) {
        const lineEnd = buffered.indexOf('\r\n');
        if (lineEnd < 0) return;
        const size = parseInt(buffered.subarray(0, lineEnd).toString('latin1'), 16);
        if (buffered.length < lineEnd + 2 + size + 2) return;
        parser.feed(decoder.write(buffered.subarray(lineEnd + 2, lineEnd + 2 + size)));
        buffered = buffered.subarray(lineEnd + 2 + size + 2);
      }
    });
  });
}

async function readHostile(origin: string, sent: HostileCase['sent']): Promise<HostileReader> {
  if (Buffer.isBuffer(sent)) return readSseRaw(origin, sent);
  // Node's client types headers as strings, but writes an array as one line per value.
  const reader = await readSse(`${origin}/events`, { headers: { 'last-event-id': sent as string } });
  return { status: reader.status, contentType: reader.headers['content-type'], events: reader.events, close: reader.close };
}

describe.each(FRAMEWORKS)('hostile Last-Event-ID on %s', (framework) => {
  let app: TestApp | undefined;
  let channel: Channel | undefined;
  let reader: HostileReader | undefined;
  let arrived: Array<{ header: string | string[] | undefined; lines: number }>;
  beforeEach(async () => {
    const feed = (channel = createChannel());
    for (const id of historyIds) await feed.publish({ event: 'history', data: id });
    arrived = [];
    app = await startApp(framework, ({ stream, request }) => {
      const lines = request.rawHeaders.filter((name, i) => i % 2 === 0 && name.toLowerCase() === 'last-event-id').length;
      arrived.push({ header: request.headers['last-event-id'], lines });
      feed.subscribe(stream);
    });
  });
  afterEach(async () => {
    reader?.close();
    await channel?.close();
    await app?.close();
    app = channel = reader = undefined;
  });
  afterAll(() => {
    expect(prototypeSnapshot()).toEqual(pristine);
  });

  test.each(cases)('$name', async ({ sent, arrives, lastEventId }) => {
    const { url, streams, errors } = app!;
    const feed = channel!;
    reader = await readHostile(url, sent);
    expect(reader.status).toBe(200);
    expect(reader.contentType).toBe('text/event-stream; charset=utf-8');
    expect(arrived).toEqual([{ header: arrives, lines: Array.isArray(sent) ? sent.length : 1 }]);
    expect(streams).toHaveLength(1);
    const stream = streams[0]!;
    expect(stream.lastEventId).toBe(lastEventId);
    if (stream.lastEventId !== undefined) expect(isValidEventId(stream.lastEventId)).toBe(true);

    // A live event published now arrives after at most the reset event: the header never makes
    // the server replay what the client did not ask for, let alone the whole history twice.
    const liveId = await feed.publish({ event: 'live', data: 'marker' });
    const connected = reader;
    await eventually(() => connected.events.some((event) => event.event === 'live'), 5000, 'the live event');
    const live = reader.events.findIndex((event) => event.event === 'live');
    const before = reader.events.slice(0, live);
    expect(before).toEqual(expectedBefore(lastEventId));
    if (!resumableIds.includes(lastEventId!)) expect(before.length).toBeLessThanOrEqual(1);
    expect(reader.events[live]).toEqual({ id: liveId, event: 'live', data: 'marker' });

    // The server took no harm: a well-behaved client resumes exactly where it asks to.
    const next = await readSse(`${url}/events`, { headers: { 'last-event-id': String(HISTORY - 2) } });
    try {
      const resumed = await next.waitForEvents(3);
      expect(resumed.map((event) => event.id)).toEqual([String(HISTORY - 1), String(HISTORY), liveId]);
    } finally {
      next.close();
    }

    expect(errors).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(prototypeSnapshot()).toEqual(pristine);
  });
});

describe.each(FRAMEWORKS)('the replay a Last-Event-ID can ask for is capped on %s', (framework) => {
  let app: TestApp | undefined;
  let channel: Channel | undefined;
  afterEach(async () => {
    await channel?.close();
    await app?.close();
    app = channel = undefined;
  });

  test.each(resumableIds.slice(0, 2))('%s, further behind than maxReplayEvents, gets the reset event instead', async (lastEventId) => {
    const feed = (channel = createChannel({ maxReplayEvents: 5 }));
    for (const id of historyIds) await feed.publish({ event: 'history', data: id });
    app = await startApp(framework, ({ stream }) => feed.subscribe(stream));
    const reader = await readSse(`${app.url}/events`, { headers: { 'last-event-id': lastEventId } });
    try {
      const liveId = await feed.publish({ event: 'live', data: 'marker' });
      const events = await reader.waitForEvents(2);
      expect(events).toEqual([
        { id: String(HISTORY), event: 'reset', data: JSON.stringify({ lastEventId }) },
        { id: liveId, event: 'live', data: 'marker' },
      ]);
      expect(app.errors).toEqual([]);
    } finally {
      reader.close();
    }
  });
});
