/**
 * A lean load client for the density scenarios (I and K), in a process of its own: tens of
 * thousands of idle streams, where the rich client (client.ts, `http.get` per stream) costs too
 * much memory per connection. Each connection is a bare `net.connect` from a loopback source
 * address of its own (127.0.0.2, 127.0.0.3, ...: a bound source address takes an ephemeral port
 * of its own, some 28,000 per address) with a hand-written `GET /events`, and a byte-level parser
 * of the head, the chunked framing and the SSE lines.
 *
 * Per connection it counts heartbeats (any line starting with `:`) and reads `seq` and `t` from
 * each data line (payload.ts) for latency, and checks that it gets every event published since it
 * opened, once and in order. Its state lives in typed arrays indexed by connection number; only a
 * line split across two reads is kept as a string until its end arrives.
 */
import net from 'node:net';
import { nowMicros } from './payload.js';
import { limitLifetime, serve } from './rpc.js';

limitLifetime(30 * 60_000);

/** Events are checked as bits of one 32-bit mask per connection: seq 1 to 31 (a run publishes fewer). */
const MAX_SEQ = 31;

const LF = 0x0a;
const COLON = 0x3a;
const LOWER_D = 0x64;

/** Where a connection's HTTP framing stands. */
const enum Http {
  Head,
  ChunkSize,
  /** A chunk extension or the CR after the size: skipped to the LF. */
  ChunkSizeTail,
  ChunkData,
  /** The CRLF after a chunk's data. */
  ChunkEnd,
  /** A body without chunked framing: read to the end. */
  Identity,
  /** The last chunk came: the server ended the stream. */
  Ended,
}

/** Where a connection's SSE parsing stands within a line. */
const enum Line {
  Start,
  /** A comment or a field other than data: skipped to the LF. */
  Skip,
  /** A data line split across reads: its start is in `partial`. */
  Data,
}

/** Where a connection stands as a whole. */
const enum Status {
  Connecting,
  Open,
  /** Failed before its head, dropped after it, or ended by the server. */
  Gone,
  /** Closed by this client. */
  Closed,
}

/** What `open` answers. */
export interface DensityOpened {
  readonly opened: number;
  readonly failures: Record<string, number>;
  readonly timedOut: boolean;
}

/** What `report` answers: the checks of every connection, for the events published so far. */
export interface DensityReport {
  readonly readers: number;
  /** Events the readers should have had. */
  readonly expected: number;
  readonly lost: number;
  readonly duplicates: number;
  readonly misordered: number;
  readonly unexpected: number;
  /** Connections the server dropped or ended after their head. */
  readonly dropped: number;
  readonly errors: Record<string, number>;
}

let capacity = 0;
let sockets: (net.Socket | undefined)[] = [];
let status = new Uint8Array(0);
let httpState = new Uint8Array(0);
let lineState = new Uint8Array(0);
let chunkLeft = new Int32Array(0);
/** The first seq each connection must get: the next one published when it opened. */
let firstSeq = new Uint8Array(0);
let maxSeq = new Uint8Array(0);
let seen = new Uint32Array(0);
/** The unterminated head, or the start of a data line split across reads. */
const partial = new Map<number, string>();
let connections = 0;
let heartbeats = 0;
let duplicates = 0;
let misordered = 0;
let unexpected = 0;
let dropped = 0;
const errors: Record<string, number> = {};
/** Per seq: how many connections had it, and their latencies (ms). */
const received = new Int32Array(MAX_SEQ + 1);
const latencies: (Float64Array | undefined)[] = [];
/** Called when a connection's head arrived (true) or it failed before (false). */
let onSettled: ((i: number, ok: boolean) => void) | undefined;
/** Why the connections of the `open` under way failed, by reason. */
let openFailures: Record<string, number> = {};

function countError(code: string): void {
  errors[code] = (errors[code] ?? 0) + 1;
}

/** A connection went away: before its head, a failed open; after it, a drop, unless we closed it. */
function gone(i: number, why: string): void {
  const was = status[i];
  if (was === Status.Gone || was === Status.Closed) return;
  status[i] = Status.Gone;
  partial.delete(i);
  if (was === Status.Connecting) {
    openFailures[why] = (openFailures[why] ?? 0) + 1;
    onSettled?.(i, false);
  } else {
    dropped++;
    countError(why);
  }
  sockets[i]?.destroy();
  sockets[i] = undefined;
}

function onData(i: number, line: string): void {
  if (!line.startsWith('data:')) return;
  const now = nowMicros();
  let seq: number;
  let t: number;
  try {
    ({ seq, t } = JSON.parse(line.slice(line.charCodeAt(5) === 0x20 ? 6 : 5)) as { seq: number; t: number });
  } catch {
    unexpected++;
    return;
  }
  if (!Number.isInteger(seq) || seq < firstSeq[i]! || seq > MAX_SEQ || typeof t !== 'number') {
    unexpected++;
    return;
  }
  const bit = 2 ** (seq - 1);
  if (seen[i]! & bit) {
    duplicates++;
    return;
  }
  if (seq < maxSeq[i]!) misordered++;
  else maxSeq[i] = seq;
  seen[i] = (seen[i]! | bit) >>> 0;
  const samples = (latencies[seq] ??= new Float64Array(capacity));
  const k = received[seq]!;
  samples[k] = (now - t) / 1000;
  received[seq] = k + 1;
}

/** Reads SSE lines in `buf[from..to)`: counts comments, hands data lines to {@link onData}. */
function parseBody(i: number, buf: Buffer, from: number, to: number): void {
  let state = lineState[i]! as Line;
  let p = from;
  while (p < to) {
    if (state === Line.Start) {
      const c = buf[p]!;
      if (c === LF) {
        p++;
        continue;
      }
      if (c === COLON) heartbeats++;
      if (c !== LOWER_D) {
        state = Line.Skip;
        continue;
      }
      // A data line (no other field starts with d): read to its LF.
      const lf = buf.indexOf(LF, p);
      if (lf === -1 || lf >= to) {
        partial.set(i, buf.toString('latin1', p, to));
        state = Line.Data;
        break;
      }
      onData(i, buf.toString('latin1', p, lf));
      p = lf + 1;
    } else if (state === Line.Skip) {
      const lf = buf.indexOf(LF, p);
      if (lf === -1 || lf >= to) break;
      state = Line.Start;
      p = lf + 1;
    } else {
      const lf = buf.indexOf(LF, p);
      if (lf === -1 || lf >= to) {
        partial.set(i, partial.get(i)! + buf.toString('latin1', p, to));
        break;
      }
      const line = partial.get(i)! + buf.toString('latin1', p, lf);
      partial.delete(i);
      onData(i, line);
      state = Line.Start;
      p = lf + 1;
    }
  }
  lineState[i] = state;
}

/** The head, then the chunked framing (or none), around {@link parseBody}. */
function feed(i: number, buf: Buffer): void {
  let p = 0;
  if (httpState[i] === Http.Head) {
    const before = partial.get(i) ?? '';
    const text = before + buf.toString('latin1');
    const end = text.indexOf('\r\n\r\n');
    if (end === -1) {
      if (text.length > 16_384) return gone(i, 'head too long');
      partial.set(i, text);
      return;
    }
    partial.delete(i);
    const head = text.slice(0, end);
    const code = /^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1];
    if (code !== '200') return gone(i, `status ${code ?? '?'}`);
    httpState[i] = /\r\ntransfer-encoding:[ \t]*chunked/i.test(head) ? Http.ChunkSize : Http.Identity;
    status[i] = Status.Open;
    onSettled?.(i, true);
    p = end + 4 - before.length;
  }
  const n = buf.length;
  while (p < n) {
    switch (httpState[i]) {
      case Http.ChunkSize: {
        const c = buf[p++]!;
        const digit = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
        if (digit >= 0) chunkLeft[i] = chunkLeft[i]! * 16 + digit;
        else if (c === LF) httpState[i] = chunkLeft[i] === 0 ? Http.Ended : Http.ChunkData;
        else httpState[i] = Http.ChunkSizeTail;
        break;
      }
      case Http.ChunkSizeTail:
        if (buf[p++] === LF) httpState[i] = chunkLeft[i] === 0 ? Http.Ended : Http.ChunkData;
        break;
      case Http.ChunkData: {
        const take = Math.min(chunkLeft[i]!, n - p);
        parseBody(i, buf, p, p + take);
        p += take;
        chunkLeft[i] = chunkLeft[i]! - take;
        if (chunkLeft[i] === 0) httpState[i] = Http.ChunkEnd;
        break;
      }
      case Http.ChunkEnd:
        if (buf[p++] === LF) httpState[i] = Http.ChunkSize;
        break;
      case Http.Identity:
        parseBody(i, buf, p, n);
        p = n;
        break;
      default:
        // Past the last chunk: the server ended the stream.
        return gone(i, 'ended by the server');
    }
  }
  if (httpState[i] === Http.Ended) gone(i, 'ended by the server');
}

/** Sizes the state for `count` connections; once per process. */
function init(count: number): void {
  capacity = count;
  sockets = new Array<net.Socket | undefined>(count);
  status = new Uint8Array(count);
  httpState = new Uint8Array(count);
  lineState = new Uint8Array(count);
  chunkLeft = new Int32Array(count);
  firstSeq = new Uint8Array(count);
  maxSeq = new Uint8Array(count);
  seen = new Uint32Array(count);
}

interface OpenArgs {
  /** The servers' ports: connection i goes to `ports[i % ports.length]`. */
  readonly ports: readonly number[];
  /** Source addresses: connection i binds `addresses[i % addresses.length]`. */
  readonly addresses: readonly string[];
  readonly count: number;
  /** The next seq to be published: what each of these connections must get first. */
  readonly firstSeq: number;
  /** Connections whose head has not yet arrived, at most. */
  readonly concurrency: number;
  readonly timeoutMs: number;
}

/** Opens `count` more connections, at most `concurrency` at a time; resolves once each has its head or failed. */
function open(args: OpenArgs): Promise<DensityOpened> {
  if (connections + args.count > capacity) throw new Error(`open: ${connections + args.count} connections, past the ${capacity} sized for`);
  const first = connections;
  const end = first + args.count;
  connections = end;
  let next = first;
  let inFlight = 0;
  let opened = 0;
  let failed = 0;
  const failures: Record<string, number> = (openFailures = {});
  return new Promise((resolve) => {
    const timer = setTimeout(() => finish(true), args.timeoutMs);
    const finish = (timedOut: boolean) => {
      clearTimeout(timer);
      onSettled = undefined;
      resolve({ opened, failures, timedOut });
    };
    onSettled = (_i, ok) => {
      inFlight--;
      if (ok) opened++;
      else failed++;
      if (opened + failed === args.count) finish(false);
      else launch();
    };
    const launch = () => {
      while (inFlight < args.concurrency && next < end) connect(next++);
    };
    const connect = (i: number) => {
      inFlight++;
      firstSeq[i] = args.firstSeq;
      const port = args.ports[i % args.ports.length]!;
      const socket = net.connect({ host: '127.0.0.1', port, localAddress: args.addresses[i % args.addresses.length] });
      sockets[i] = socket;
      socket.on('connect', () => socket.write(`GET /events HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n\r\n`));
      socket.on('data', (chunk: Buffer) => feed(i, chunk));
      socket.on('error', (error: NodeJS.ErrnoException) => gone(i, error.code ?? error.message));
      socket.on('close', () => gone(i, status[i] === Status.Connecting ? 'closed before its head' : 'closed by the server'));
    };
    if (args.count === 0) finish(false);
    else launch();
  });
}

/** How many open connections must get `seq`: those opened before it was published. */
function expectedFor(seq: number): number {
  let n = 0;
  for (let i = 0; i < connections; i++) if (firstSeq[i]! <= seq && status[i] !== Status.Closed) n++;
  return n;
}

function popcount(x: number): number {
  let n = 0;
  for (; x; x = (x & (x - 1)) >>> 0) n++;
  return n;
}

function report(published: number): DensityReport {
  let readers = 0;
  let expected = 0;
  let lost = 0;
  for (let i = 0; i < connections; i++) {
    if (status[i] === Status.Closed) continue;
    readers++;
    const due = Math.max(0, published - firstSeq[i]! + 1);
    expected += due;
    lost += due - Math.min(due, popcount(seen[i]!));
  }
  return { readers, expected, lost, duplicates, misordered, unexpected, dropped, errors };
}

serve(async (request) => {
  switch (request.cmd) {
    case 'init':
      init(request.capacity as number);
      return {};
    case 'open':
      return open(request as unknown as OpenArgs);
    case 'heartbeats':
      return { heartbeats };
    case 'await-seq': {
      // Polled: the latency was taken when each event arrived, so the poll adds nothing to it.
      const seq = request.seq as number;
      const expected = expectedFor(seq);
      const deadline = Date.now() + (request.timeoutMs as number);
      while (received[seq]! < expected && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
      const samples = latencies[seq]?.subarray(0, received[seq]) ?? new Float64Array(0);
      let lastMs = 0;
      for (const ms of samples) if (ms > lastMs) lastMs = ms;
      return { received: received[seq], expected, lastMs };
    }
    case 'latencies': {
      const from = request.from as number;
      const to = request.to as number;
      const parts: Float64Array[] = [];
      for (let seq = from; seq <= to; seq++) parts.push(latencies[seq]?.subarray(0, received[seq]) ?? new Float64Array(0));
      const all = new Float64Array(parts.reduce((sum, part) => sum + part.length, 0));
      let offset = 0;
      for (const part of parts) {
        all.set(part, offset);
        offset += part.length;
      }
      return all;
    }
    case 'report':
      return report(request.published as number);
    case 'exit':
      for (let i = 0; i < connections; i++) {
        if (status[i] !== Status.Gone) status[i] = Status.Closed;
        sockets[i]?.destroy();
      }
      setImmediate(() => process.exit(0));
      return {};
    default:
      throw new Error(`unknown command ${request.cmd}`);
  }
});

process.send!({ ready: true });
