/**
 * A load client, in a process of its own: opens plain `http.get` connections (no agent, so one
 * TCP connection each) to one server, parses every stream incrementally, and checks every event:
 * each reader must get `seq` 1 to N exactly once and in order. Latency is the receive time
 * minus the send time in the event's data, on the same machine's clock.
 *
 * Slow connections pause their response as soon as it arrives and never resume, so the server's
 * buffers for them fill up.
 *
 * Reconnecting readers (scenario J) behave as an EventSource does: when their connection drops,
 * is refused or ends, they wait their reconnection time (the last `retry:` they read, else a
 * default; no jitter, so that a crash makes a real storm) and come back with `Last-Event-ID`. A
 * deferred answer (a 503, or a 200 that carries `Retry-After`) sends them back the same way.
 * Their checks span their reconnects: one reader, one sequence.
 */
import http from 'node:http';
import { nowMicros } from './payload.js';
import { limitLifetime, serve } from './rpc.js';
import { noReconnects } from './reconnect-status.js';

limitLifetime(60 * 60_000);
const gc = (globalThis as { gc?: () => void }).gc;

interface Connection {
  request: http.ClientRequest;
  readonly slow: boolean;
  response: http.IncomingMessage | undefined;
  /** The unterminated tail of the last chunk. */
  rest: Buffer | undefined;
  /** The event being read: its data lines, their bytes, its type, and seq and t of its data. */
  dataLines: number;
  dataBytes: number;
  eventType: string;
  seq: number;
  sentAt: number;
  /** `seq` values received, as flags; undefined when no event is expected. */
  seen: Uint8Array | undefined;
  distinct: number;
  maxSeq: number;
  duplicates: number;
  misordered: number;
  /** Events outside 1..N, events of another type, or data without a seq. */
  unexpected: number;
  completeAt: number;
  farewell: boolean;
  retry: number | undefined;
  /** The response ended cleanly (the server ended it). */
  ended: boolean;
  /** The connection went away: ended, dropped, or failed; a reconnecting reader: it gave up. */
  closed: boolean;
  error: string | undefined;
  /** When it received its last new event (µs). */
  lastReceivedAt: number;
  /** Set for a reader that reconnects (scenario J). */
  reconnect: Reconnect | undefined;
}

/** What a reconnecting reader keeps across its connections, as an EventSource would. */
interface Reconnect {
  readonly url: URL;
  /** Without a `retry:` from the server. */
  readonly defaultRetryMs: number;
  /** The id field of the block being read, committed to `lastEventId` at its blank line. */
  idBuffer: string | undefined;
  /** The last event ID string: sent as `Last-Event-ID` on every reconnect. */
  lastEventId: string | undefined;
  /** What the current response asked of the next reconnect: `Retry-After`, and a `retry:` in its body. */
  retryAfterMs: number | undefined;
  responseRetryMs: number | undefined;
  /** Whether any response came yet: until then a failure is the open's, not a drop to recover from. */
  started: boolean;
  stopped: boolean;
  timer: NodeJS.Timeout | undefined;
  /** Requests made, and answers that deferred it. */
  attempts: number;
  deferred: number;
  /** Why connections failed or dropped, by code: the storm's normal weather, not errors. */
  drops: Map<string, number>;
  /** When its current stream went live (µs), and when it then held every event sent before that; 0 for not yet. */
  liveSince: number;
  caughtUpAt: number;
}

/** A reconnecting reader's bound on its requests, whatever happens. */
const MAX_ATTEMPTS = 200;
/** How long a reconnecting reader waits for an answer before it drops the attempt and tries again. */
const ATTEMPT_TIMEOUT_MS = 30_000;

let connections: Connection[] = [];
let expected = 0;
let latencies: Float64Array | undefined;
let latencyCount = 0;
let readersLeft = 0;
let onProgress: (() => void) | undefined;

function reset(): void {
  for (const connection of connections) {
    const reconnect = connection.reconnect;
    if (reconnect) {
      reconnect.stopped = true;
      clearTimeout(reconnect.timer);
    }
    connection.request.destroy();
  }
  connections = [];
  expected = 0;
  latencies = undefined;
  latencyCount = 0;
  readersLeft = 0;
  onProgress = undefined;
}

// The parser works on the bytes as they arrive: it finds line ends with a native search and
// reads `seq` and `t` straight from the data line, so a client process keeps up with hundreds
// of connections and large events without decoding them into strings.
const LF = 0x0a;
const COLON = 0x3a;
const SPACE = 0x20;
const SEQ = Buffer.from('"seq":');
const TIME = Buffer.from('"t":');

function feed(connection: Connection, chunk: Buffer, now: number): void {
  let position = 0;
  if (connection.rest) {
    // The line that the last chunk left unterminated: complete it with this chunk's first line.
    const end = chunk.indexOf(LF);
    if (end === -1) {
      connection.rest = Buffer.concat([connection.rest, chunk]);
      return;
    }
    const joined = Buffer.concat([connection.rest, chunk.subarray(0, end)]);
    connection.rest = undefined;
    line(connection, joined, 0, joined.length, now);
    position = end + 1;
  }
  for (;;) {
    const end = chunk.indexOf(LF, position);
    if (end === -1) break;
    line(connection, chunk, position, end, now);
    position = end + 1;
  }
  if (position < chunk.length) connection.rest = Buffer.from(chunk.subarray(position));
}

function startsWith(bytes: Buffer, start: number, end: number, field: string): boolean {
  if (end - start < field.length) return false;
  for (let i = 0; i < field.length; i++) if (bytes[start + i] !== field.charCodeAt(i)) return false;
  return true;
}

/** One line, `bytes[start..end)`, as the WHATWG parser reads it (the servers never send CR). */
function line(connection: Connection, bytes: Buffer, start: number, end: number, now: number): void {
  if (start === end) return dispatch(connection, now);
  if (bytes[start] === COLON) return; // a comment
  let field: string;
  let value = start;
  if (startsWith(bytes, start, end, 'data:')) field = 'data';
  else if (startsWith(bytes, start, end, 'event:')) field = 'event';
  else if (startsWith(bytes, start, end, 'retry:')) field = 'retry';
  else if (connection.reconnect && startsWith(bytes, start, end, 'id:')) field = 'id';
  else return; // id, when nothing reconnects with it, or a field clients ignore
  value += field.length + 1;
  if (bytes[value] === SPACE && value < end) value++;
  if (field === 'id') {
    const id = bytes.toString('utf8', value, end);
    if (!id.includes('\0')) connection.reconnect!.idBuffer = id;
    return;
  }
  if (field === 'data') {
    if (connection.dataLines++ === 0 && value < end) {
      connection.seq = numberAfter(bytes, value, end, SEQ);
      connection.sentAt = numberAfter(bytes, value, end, TIME);
    }
    if (value < end) connection.dataBytes += end - value;
  } else if (field === 'event') connection.eventType = bytes.toString('latin1', value, end);
  else {
    const text = bytes.toString('latin1', value, end);
    if (/^\d+$/.test(text)) {
      connection.retry = Number(text);
      if (connection.reconnect) connection.reconnect.responseRetryMs = connection.retry;
    }
  }
}

function dispatch(connection: Connection, now: number): void {
  // As the spec orders it: the last event ID string is set at every blank line, event or not.
  if (connection.reconnect) connection.reconnect.lastEventId = connection.reconnect.idBuffer;
  const { dataLines, dataBytes, eventType, seq, sentAt } = connection;
  connection.dataLines = 0;
  connection.dataBytes = 0;
  connection.eventType = '';
  connection.seq = NaN;
  connection.sentAt = NaN;
  // An empty data buffer dispatches nothing: id-only blocks, `retry` blocks.
  if (dataLines === 0 || (dataLines === 1 && dataBytes === 0)) return;
  if (eventType === 'bye') {
    connection.farewell = true;
    return;
  }
  if (eventType !== '' && eventType !== 'message') {
    connection.unexpected++;
    return;
  }
  received(connection, seq, sentAt, now);
}

/** The decimal number right after `key` within `bytes[start..end)`, or NaN. */
function numberAfter(bytes: Buffer, start: number, end: number, key: Buffer): number {
  const at = bytes.indexOf(key, start);
  if (at === -1 || at + key.length >= end) return NaN;
  let value = 0;
  let digits = 0;
  for (let i = at + key.length; i < end; i++, digits++) {
    const digit = bytes[i]! - 48;
    if (digit < 0 || digit > 9) break;
    value = value * 10 + digit;
  }
  return digits ? value : NaN;
}

function received(connection: Connection, seq: number, sentAt: number, now: number): void {
  const seen = connection.seen;
  if (!seen || !(seq >= 1 && seq <= expected)) {
    connection.unexpected++;
    return;
  }
  if (seen[seq]) {
    connection.duplicates++;
    return;
  }
  seen[seq] = 1;
  if (seq < connection.maxSeq) connection.misordered++;
  else connection.maxSeq = seq;
  const reconnect = connection.reconnect;
  if (reconnect && reconnect.caughtUpAt === 0 && sentAt >= reconnect.liveSince) {
    // The first event sent after its stream went live: in order and without loss (both checked),
    // it had every earlier one once the one before this arrived, or at once if that came earlier.
    reconnect.caughtUpAt = Math.max(reconnect.liveSince, connection.lastReceivedAt);
  }
  connection.lastReceivedAt = now;
  if (latencies) {
    if (latencyCount === latencies.length) {
      const grown = new Float64Array(latencies.length * 2);
      grown.set(latencies);
      latencies = grown;
    }
    latencies[latencyCount++] = now - sentAt;
  }
  if (++connection.distinct === expected) {
    connection.completeAt = now;
    readersLeft--;
    onProgress?.();
  }
}

function newConnection(slow: boolean, reconnect: Reconnect | undefined): Connection {
  return {
    request: undefined!, // set by attach() at once
    slow,
    response: undefined,
    rest: undefined,
    dataLines: 0,
    dataBytes: 0,
    eventType: '',
    seq: NaN,
    sentAt: NaN,
    seen: expected > 0 && !slow ? new Uint8Array(expected + 1) : undefined,
    distinct: 0,
    maxSeq: 0,
    duplicates: 0,
    misordered: 0,
    unexpected: 0,
    completeAt: 0,
    farewell: false,
    retry: undefined,
    ended: false,
    closed: false,
    error: undefined,
    lastReceivedAt: 0,
    reconnect,
  };
}

function open(url: URL, slow: boolean, timeoutMs: number): Promise<Connection> {
  const connection = newConnection(slow, undefined);
  return attach(connection, url, timeoutMs).then(() => connection);
}

function openReconnecting(url: URL, defaultRetryMs: number, timeoutMs: number): Promise<Connection> {
  const connection = newConnection(false, {
    url,
    defaultRetryMs,
    idBuffer: undefined,
    lastEventId: undefined,
    retryAfterMs: undefined,
    responseRetryMs: undefined,
    started: false,
    stopped: false,
    timer: undefined,
    attempts: 0,
    deferred: 0,
    drops: new Map(),
    liveSince: 0,
    caughtUpAt: 0,
  });
  return attach(connection, url, timeoutMs).then(() => connection);
}

/**
 * Makes the connection's request; resolves with its response, rejects when it fails first. A
 * reconnecting reader also reconnects from here whenever it closes, once one response came.
 */
function attach(connection: Connection, url: URL, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const reconnect = connection.reconnect;
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (reconnect) {
      reconnect.attempts++;
      reconnect.retryAfterMs = undefined;
      reconnect.responseRetryMs = undefined;
      // A new connection parses afresh: what the last one left unfinished is dropped, as the spec says.
      reconnect.idBuffer = reconnect.lastEventId;
      connection.rest = undefined;
      connection.dataLines = 0;
      connection.dataBytes = 0;
      connection.eventType = '';
      if (reconnect.lastEventId) headers['last-event-id'] = reconnect.lastEventId;
    }
    const request = http.get(url, { agent: false, headers });
    connection.request = request;
    const timer = setTimeout(() => {
      request.destroy(new Error(`no response within ${timeoutMs} ms`));
    }, timeoutMs);
    request.on('error', (error) => {
      clearTimeout(timer);
      const code = (error as NodeJS.ErrnoException).code ?? error.message;
      if (reconnect?.started) reconnect.drops.set(code, (reconnect.drops.get(code) ?? 0) + 1);
      else connection.error ??= code;
      reject(error);
    });
    request.on('close', () => {
      clearTimeout(timer);
      if (reconnect?.started && !reconnect.stopped) return scheduleReconnect(connection);
      connection.closed = true;
      onProgress?.();
    });
    request.once('response', (response) => {
      clearTimeout(timer);
      connection.response = response;
      const status = response.statusCode;
      const eventStream = String(response.headers['content-type']).startsWith('text/event-stream');
      if (reconnect) {
        reconnect.started = true;
        reconnect.retryAfterMs = retryAfterMs(response.headers['retry-after']);
        if (status === 503 && reconnect.retryAfterMs !== undefined) {
          // Deferred: come back after Retry-After; the close reconnects.
          reconnect.deferred++;
          response.resume();
          return resolve();
        }
      }
      if (status !== 200 || !eventStream) {
        // What an EventSource fails on for good.
        if (reconnect) reconnect.stopped = true;
        connection.error ??= `status ${status}, content-type ${response.headers['content-type']}`;
        request.destroy();
        return reject(new Error(`status ${status}, content-type ${response.headers['content-type']}`));
      }
      if (reconnect) {
        if (reconnect.retryAfterMs !== undefined) reconnect.deferred++;
        else {
          reconnect.liveSince = nowMicros();
          reconnect.caughtUpAt = 0;
        }
      }
      if (connection.slow) response.pause();
      else {
        response.on('data', (chunk: Buffer) => feed(connection, chunk, nowMicros()));
        response.on('end', () => (connection.ended = true));
      }
      response.on('error', () => {});
      resolve();
    });
  });
}

/** `Retry-After` in milliseconds: the delta-seconds form, which is what a server sends for this. */
function retryAfterMs(header: string | undefined): number | undefined {
  return header !== undefined && /^\d+$/.test(header) ? Number(header) * 1000 : undefined;
}

/**
 * After a drop, a refusal or a deferral: the reconnection time, as an EventSource keeps it, or
 * what this response's deferral asked for. A `retry:` in the body is the precise form of the
 * same wish as `Retry-After` (milliseconds, and jittered by the server), so it wins when both came.
 */
function scheduleReconnect(connection: Connection): void {
  const reconnect = connection.reconnect!;
  reconnect.liveSince = 0;
  reconnect.caughtUpAt = 0;
  if (reconnect.attempts >= MAX_ATTEMPTS) {
    reconnect.stopped = true;
    connection.error ??= `gave up after ${MAX_ATTEMPTS} attempts`;
    connection.closed = true;
    onProgress?.();
    return;
  }
  const delayMs = reconnect.responseRetryMs ?? reconnect.retryAfterMs ?? connection.retry ?? reconnect.defaultRetryMs;
  reconnect.timer = setTimeout(() => {
    if (!reconnect.stopped) attach(connection, reconnect.url, ATTEMPT_TIMEOUT_MS).catch(() => {});
  }, delayMs);
}

/** Runs `task(i)` for i in 0..count-1, at most `concurrency` at once. */
async function pool(count: number, concurrency: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

/** Waits until `done()` holds, re-checking on progress, for at most `timeoutMs`. */
function until(done: () => boolean, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (done()) return resolve(true);
    const finish = (value: boolean) => {
      clearTimeout(timer);
      clearInterval(poll);
      onProgress = undefined;
      resolve(value);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    const poll = setInterval(() => done() && finish(true), 50);
    onProgress = () => done() && finish(true);
  });
}

function report(timedOut: boolean) {
  let lost = 0;
  let duplicates = 0;
  let misordered = 0;
  let unexpected = 0;
  let complete = 0;
  let droppedReaders = 0;
  let lastCompleteAt = 0;
  let ended = 0;
  let farewells = 0;
  let retryMin = Infinity;
  let retryMax = -Infinity;
  let retries = 0;
  const errors = new Map<string, number>();
  for (const connection of connections) {
    if (connection.error) errors.set(connection.error, (errors.get(connection.error) ?? 0) + 1);
    if (connection.ended) ended++;
    if (connection.farewell) farewells++;
    if (connection.retry !== undefined) {
      retries++;
      retryMin = Math.min(retryMin, connection.retry);
      retryMax = Math.max(retryMax, connection.retry);
    }
    if (connection.slow) continue;
    duplicates += connection.duplicates;
    misordered += connection.misordered;
    unexpected += connection.unexpected;
    if (expected === 0) continue;
    lost += expected - connection.distinct;
    if (connection.distinct === expected) {
      complete++;
      lastCompleteAt = Math.max(lastCompleteAt, connection.completeAt);
    } else if (connection.closed) droppedReaders++;
  }
  const slow = connections.filter((connection) => connection.slow).length;
  return {
    connections: connections.length,
    readers: connections.length - slow,
    slow,
    expected,
    complete,
    lost,
    duplicates,
    misordered,
    unexpected,
    droppedReaders,
    lastCompleteAt,
    ended,
    farewells,
    retries,
    retryMin: retries ? retryMin : undefined,
    retryMax: retries ? retryMax : undefined,
    errors: Object.fromEntries(errors),
    timedOut,
    latencies: latencies ? latencies.slice(0, latencyCount) : undefined,
  };
}
export type ClientReport = ReturnType<typeof report>;

serve(async (request) => {
  switch (request.cmd) {
    case 'open': {
      // Opens `count` streams, the first `slow` of them slow, each expecting `expect` events;
      // with `reconnectMs`, readers that reconnect, by default after that long.
      reset();
      const url = new URL(request.url as string);
      const count = request.count as number;
      const slow = request.slow as number;
      const reconnectMs = request.reconnectMs as number | undefined;
      expected = request.expect as number;
      if (request.latency) latencies = new Float64Array(Math.max(1024, (count - slow) * expected));
      readersLeft = expected > 0 ? count - slow : 0;
      const failures = new Map<string, number>();
      await pool(count, request.concurrency as number, async (index) => {
        try {
          connections.push(
            await (reconnectMs === undefined ? open(url, index < slow, 20_000) : openReconnecting(url, reconnectMs, 20_000)),
          );
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          failures.set(message, (failures.get(message) ?? 0) + 1);
        }
      });
      return { opened: connections.length, failures: Object.fromEntries(failures) };
    }
    case 'expect': {
      // Reconnecting readers are opened for as many events as may come: this says how many did.
      expected = request.events as number;
      const now = nowMicros();
      readersLeft = 0;
      for (const connection of connections) {
        if (connection.slow) continue;
        if (connection.distinct < expected) readersLeft++;
        else connection.completeAt ||= now;
      }
      return {};
    }
    case 'reconnect-status': {
      // Where the reconnecting readers stand since `since` (µs): how many have a live stream
      // opened since then, how many of those hold every event sent before it went live, and when
      // the last of each got there. `newest`, from the publisher, lets a reader that holds the
      // newest event know it is caught up without waiting for the next one.
      const since = request.since as number;
      const newest = request.newest as { seq: number; before: number } | undefined;
      const status = noReconnects();
      for (const connection of connections) {
        const { reconnect, closed } = connection;
        if (!reconnect) continue;
        status.readers++;
        status.attempts += reconnect.attempts;
        status.deferred += reconnect.deferred;
        if (closed) status.gaveUp++;
        for (const [code, count] of reconnect.drops) status.drops[code] = (status.drops[code] ?? 0) + count;
        if (reconnect.liveSince < since) continue;
        status.live++;
        status.lastLiveAt = Math.max(status.lastLiveAt, reconnect.liveSince);
        if (
          reconnect.caughtUpAt === 0 &&
          newest &&
          newest.seq > 0 &&
          connection.maxSeq === newest.seq &&
          reconnect.liveSince <= newest.before
        ) {
          // Every event sent before it went live has a seq of at most newest.seq, and it holds
          // them all (in order, without loss: both checked), since its last new event came.
          reconnect.caughtUpAt = Math.max(reconnect.liveSince, connection.lastReceivedAt);
        }
        if (reconnect.caughtUpAt === 0) continue;
        status.caughtUp++;
        status.lastCaughtUpAt = Math.max(status.lastCaughtUpAt, reconnect.caughtUpAt);
      }
      return status;
    }
    case 'await': {
      // Until every reader has every event or has been dropped, so that the loss is counted
      // in full.
      const done = () => readersLeft === 0 || connections.every((c) => c.slow || c.closed || c.distinct === expected);
      const finished = await until(done, request.timeoutMs as number);
      return report(!finished);
    }
    case 'await-end': {
      const finished = await until(() => connections.every((c) => c.closed), request.timeoutMs as number);
      return report(!finished);
    }
    case 'close': {
      reset();
      await new Promise((resolve) => setTimeout(resolve, 50));
      gc?.();
      return {};
    }
    case 'churn': {
      // Connect, wait for the head, disconnect: `cycles` times, `concurrency` at once.
      reset();
      const url = new URL(request.url as string);
      const deadline = Date.now() + (request.timeoutMs as number);
      let ok = 0;
      const failures = new Map<string, number>();
      await pool(request.cycles as number, request.concurrency as number, async () => {
        if (Date.now() > deadline) {
          failures.set('deadline', (failures.get('deadline') ?? 0) + 1);
          return;
        }
        await new Promise<void>((resolve) => {
          const req = http.get(url, { agent: false, headers: { accept: 'text/event-stream' } });
          let responded = false;
          const timer = setTimeout(() => req.destroy(new Error('no response within 10000 ms')), 10_000);
          req.once('response', (response) => {
            responded = true;
            if (response.statusCode === 200) ok++;
            else failures.set(`status ${response.statusCode}`, (failures.get(`status ${response.statusCode}`) ?? 0) + 1);
            response.on('error', () => {});
            req.destroy();
          });
          req.once('error', (error) => {
            const code = (error as NodeJS.ErrnoException).code ?? error.message;
            // Our own destroy after the head is the disconnect, not a failure.
            if (!responded) failures.set(code, (failures.get(code) ?? 0) + 1);
          });
          req.once('close', () => {
            clearTimeout(timer);
            resolve();
          });
        });
      });
      return { ok, failures: Object.fromEntries(failures) };
    }
    case 'report':
      return report(false);
    default:
      throw new Error(`unknown command ${request.cmd}`);
  }
});

process.send!({ ready: true, pid: process.pid });
