import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { SseError } from './errors.js';
import type { SseSink, SseSinkCloseListener } from './sink.js';
import { HEARTBEAT } from './format.js';

const HEARTBEAT_BYTES = Buffer.byteLength(HEARTBEAT);
const HEARTBEAT_FRAME = Buffer.from(HEARTBEAT_BYTES.toString(16) + '\r\n' + HEARTBEAT + '\r\n');

/** A request from `node:http`, or from `node:http2` in compatibility mode. */
export type NodeRequest = IncomingMessage | Http2ServerRequest;
/** A response from `node:http`, or from `node:http2` in compatibility mode. */
export type NodeResponse = ServerResponse | Http2ServerResponse;

/** Hooks through which an adapter ties a Node sink to its framework. */
export interface NodeSinkHooks {
  /**
   * Runs just before ssekit writes the head, to open the stream or to reject it: the place to
   * take the response away from the framework and copy headers it holds outside the Node
   * response.
   */
  beforeOpen?: () => void;
}

// Http2ServerResponse has every member used here, under the same names, though its types
// lack a few. Middleware such as `compression` adds `flush()` to push its own buffer out.
type FlushableResponse = ServerResponse & { flush?: () => void; stream?: { destroyed: boolean } };
/** A socket or a response: what the sink writes to, corks, and hears drain from. */
type Corkable = Socket | FlushableResponse;

/**
 * The sink for every Node response: plain `node:http`, `node:http2` in compatibility mode, and
 * the frameworks built on them (Express, Fastify, Koa), which share this one implementation.
 */
export function createNodeSink(req: NodeRequest, res: NodeResponse, hooks: NodeSinkHooks = {}): SseSink {
  return new NodeSink(req, res as FlushableResponse, hooks.beforeOpen);
}

// One setImmediate per turn flushes every sink that wrote during it, however many there are.
let writtenSinks: NodeSink[] = [];
function flushAtEndOfTurn(sink: NodeSink): void {
  if (writtenSinks.push(sink) === 1) setImmediate(flushAll);
}
function flushAll(): void {
  const sinks = writtenSinks;
  writtenSinks = [];
  for (const sink of sinks) sink.flush();
}

// Node's own write() of a chunk of an HTTP/1.1 body, which the direct path stands in for. Only
// compared, never called.
// eslint-disable-next-line @typescript-eslint/unbound-method
const nativeWrite = ServerResponse.prototype.write;

// A channel writes the same event to every subscriber: measure and frame it once, not once per
// socket.
let lastChunk = '';
let lastBytes = 0;
let lastFramed: string | undefined;
function byteLengthOf(chunk: string): number {
  if (chunk !== lastChunk) {
    lastChunk = chunk;
    lastBytes = Buffer.byteLength(chunk);
    lastFramed = undefined;
  }
  return lastBytes;
}
/** `text` as one HTTP/1.1 chunk, exactly as Node frames one. */
function frame(text: string, bytes: number): string {
  if (text === lastChunk) return (lastFramed ??= bytes.toString(16) + '\r\n' + text + '\r\n');
  return bytes.toString(16) + '\r\n' + text + '\r\n';
}

/** The sink of a response, on the response itself, for the one shared close listener. */
const kSink = Symbol('ssekit sink');

function onResponseClose(this: { [kSink]?: NodeSink }): void {
  this[kSink]?.responseClosed();
}

class NodeSink implements SseSink {
  bytesWritten = 0;
  /**
   * The connection, once the stream writes its chunks to it directly: see {@link directSocket}.
   * Undefined while the head is not out, and for responses that must go through `res.write`.
   */
  private socket: Socket | undefined = undefined;
  /** Direct path: this turn's events, not yet on the socket. */
  private pending = '';
  private pendingBytes = 0;
  /** What this sink corked in the current turn of the event loop, until it flushes. */
  private corked: Corkable | undefined = undefined;
  /** A write returned false and its drain has not come yet. */
  private saturated = false;
  /** The one listener waiting for that drain: the stream's. */
  private drainListener: (() => void) | undefined = undefined;
  /** The stream, told of the close. */
  private closeListener: SseSinkCloseListener | undefined = undefined;

  // The request is not kept: the response knows it (`res.req`, on HTTP/1 and HTTP/2 alike), and
  // a field would be a word per connection.
  constructor(
    req: NodeRequest,
    private readonly res: FlushableResponse,
    private beforeOpen: (() => void) | undefined,
  ) {
    if (res.req !== req) throw new SseError('ERR_SSE_INVALID_OPTION', 'The response does not belong to this request.');
  }

  private get req(): NodeRequest {
    return this.res.req;
  }

  // Read once, by the stream: a getter rather than a field, which would be a word per connection.
  get lastEventIdHeader(): string | string[] | undefined {
    return this.req.headers['last-event-id'];
  }

  get closedBy(): 'server' | 'client' | undefined {
    const res = this.res;
    if (res.writableEnded) return 'server';
    return (res.stream ? res.stream.destroyed : res.destroyed) ? 'client' : undefined;
  }

  get headersSent(): boolean {
    return this.res.headersSent;
  }

  get bufferedBytes(): number {
    return this.pendingBytes + (this.socket ?? this.res).writableLength;
  }

  get path(): string {
    // Express rewrites `url` under a mounted router; `originalUrl` is what the client asked for.
    const url = (this.req as { originalUrl?: string }).originalUrl ?? this.req.url ?? '';
    const query = url.indexOf('?');
    return query === -1 ? url : url.slice(0, query);
  }

  open(headers: Readonly<Record<string, string>>, firstChunk?: string): boolean {
    const res = this.res;
    if (res.headersSent) {
      throw new SseError('ERR_SSE_HEADERS_SENT', 'The response already started, so it cannot become an event stream.');
    }
    this.takeResponse();
    res.removeHeader('content-length');
    // A quiet stream is healthy: no idle timeout may kill it, and events go out at once. The
    // calls are optional because test doubles such as Fastify's inject() give partial sockets.
    if (this.req.httpVersionMajor < 2) {
      // HTTP/1.1 only: illegal on HTTP/2, where Node throws on it, and on HTTP/1.0 the body
      // ends by closing the connection.
      if (this.req.httpVersionMinor >= 1) headers = { ...headers, connection: 'keep-alive' };
      const socket: (Socket & { timeout?: number }) | null = res.socket;
      // Only a socket that has an idle timeout: setTimeout(0) on one that has none (Node's
      // default) would add a property to it, and 40 bytes to every connection.
      if (socket?.timeout) socket.setTimeout(0);
      socket?.setNoDelay?.(true);
    } else {
      res.setTimeout(0);
    }
    // writeHead, not setHeader: when nothing set a header before, Node formats these straight
    // into the head and keeps no header table for the life of the response.
    (res as ServerResponse).writeHead(200, headers);
    const socket = this.directSocket();
    // Corked, the head and the first chunk leave in one packet.
    if (firstChunk !== undefined) this.cork();
    if (socket || firstChunk === undefined) res.flushHeaders();
    // What the direct path assumes, checked on this Node rather than trusted: the head went to
    // the socket, and the response keeps no bytes of its own.
    if (socket && res.writableLength === socket.writableLength) this.socket = socket;
    return firstChunk === undefined ? true : this.write(firstChunk);
  }

  /**
   * The socket to write framed chunks to, when this response allows it: HTTP/1.1 chunked
   * encoding, Node's own `write` (no compression or other middleware wrapped it), the
   * connection not busy with an earlier response, and nothing queued in the response.
   *
   * A turn's events are then one `socket.write` of one string, where `res.write` makes four
   * writes per event (size, CRLF, data, CRLF) and reads a dozen properties of the response. Under Express that
   * matters most: Express swaps the prototype of every response, which gives each its own
   * hidden class in V8, so every property read in Node's HTTP code goes megamorphic and one
   * write costs twice what it costs on plain node:http.
   */
  private directSocket(): Socket | undefined {
    const res = this.res;
    const socket: (Socket & { _httpMessage?: unknown }) | null = res.socket;
    if (!socket || !(res instanceof ServerResponse) || res.write !== nativeWrite || !res.chunkedEncoding) return undefined;
    // The response holds no bytes of its own (its length is all the socket's).
    return res.writableLength === socket.writableLength && socket._httpMessage === res ? socket : undefined;
  }

  /**
   * Runs the adapter's hook, once. Then forgets it: it holds the framework's objects for the
   * request (Fastify's reply, say), which a long-lived stream must not keep alive.
   */
  private takeResponse(): void {
    const beforeOpen = this.beforeOpen;
    this.beforeOpen = undefined;
    beforeOpen?.();
  }

  reject(status: number, contentType: string, body: string, headers?: Readonly<Record<string, string>>): void {
    const res = this.res;
    if (res.headersSent) {
      throw new SseError('ERR_SSE_HEADERS_SENT', 'The response already started, so it cannot be answered.');
    }
    this.takeResponse();
    res.statusCode = status;
    if (headers) for (const name in headers) res.setHeader(name, headers[name]!);
    res.setHeader('content-type', contentType);
    res.setHeader('content-length', Buffer.byteLength(body));
    res.end(body);
  }

  /**
   * Events that reach one connection within one turn of the event loop (a channel's burst) go
   * out together at the end of the turn, in one system write instead of one each; sooner once
   * a high-water mark of them is waiting (16 KiB before Node 22, 64 KiB since), so that what
   * stays in user space is bounded and backpressure works as without it.
   */
  write(chunk: string): boolean {
    const socket = this.socket;
    let ok: boolean;
    if (socket && chunk === HEARTBEAT && this.pendingBytes === 0 && !this.corked) {
      // A heartbeat round writes the same comment to thousands of idle sockets in one tick:
      // each goes straight out, framed once for all, with no end-of-turn pass.
      this.bytesWritten += HEARTBEAT_BYTES;
      ok = socket.destroyed ? false : socket.write(HEARTBEAT_FRAME);
    } else if (socket) {
      // Directly: the turn's events become one HTTP chunk, framed as Node frames one, written
      // in one call. Node 24's own res.write merges a corked turn's writes the same way.
      if (this.pendingBytes === 0 && !this.corked) flushAtEndOfTurn(this);
      this.pending = this.pendingBytes === 0 ? chunk : this.pending + chunk;
      const bytes = byteLengthOf(chunk);
      this.pendingBytes += bytes;
      this.bytesWritten += bytes;
      if (this.pendingBytes + socket.writableLength < socket.writableHighWaterMark) return true;
      ok = this.writePending(socket);
    } else {
      // Measured once per event however many streams write it, as on the direct path.
      this.bytesWritten += byteLengthOf(chunk);
      if (!this.corked) this.cork();
      ok = this.res.write(chunk);
      this.res.flush?.();
    }
    if (!ok) {
      // The response emits 'drain' only after its own write() returned false; the socket always does.
      this.awaitDrain(socket ?? this.res);
      this.flush();
    }
    return ok;
  }

  private writePending(socket: Socket): boolean {
    const text = frame(this.pending, this.pendingBytes);
    this.pending = '';
    this.pendingBytes = 0;
    return socket.destroyed ? false : socket.write(text, 'utf8');
  }

  /**
   * Corks the connection until the end of this turn. On HTTP/1 that is the socket, never the
   * response: a corked response keeps writes in a buffer of its own (Node 22 and later), and
   * after its uncork the drain it owes may never come (nodejs/node#60432), or come inside the
   * uncork itself (Node 24). On HTTP/2 the response corks its own stream.
   */
  private cork(): void {
    const corkable: Corkable | null = this.req.httpVersionMajor < 2 ? this.res.socket : this.res;
    if (!corkable) return; // a pipelined response that is not on its connection yet
    this.corked = corkable;
    corkable.cork();
    flushAtEndOfTurn(this);
  }

  /** Sends what this turn held back. */
  flush(): void {
    if (this.pendingBytes !== 0) this.writePending(this.socket!);
    const corked = this.corked;
    if (corked) {
      this.corked = undefined;
      corked.uncork();
    }
  }

  /**
   * Notes that a write returned false, and listens for the drain that ends it at once rather
   * than when the stream asks: Node may emit it before the stream gets to listen (inside a
   * flush, synchronously), and a drain nobody heard never comes again.
   */
  private awaitDrain(target: Corkable): void {
    if (this.saturated) return;
    this.saturated = true;
    // A closure per saturation, rather than a field per connection for the few that saturate.
    target.once('drain', () => this.drained());
  }

  private drained(): void {
    this.saturated = false;
    const listener = this.drainListener;
    this.drainListener = undefined;
    listener?.();
  }

  // Level-triggered: a drain that came before the listener still counts.
  onceDrain(listener: () => void): void {
    if (this.saturated) this.drainListener = listener;
    else queueMicrotask(listener);
  }

  offDrain(listener: () => void): void {
    if (this.drainListener === listener) this.drainListener = undefined;
  }

  onClose(listener: SseSinkCloseListener): void {
    // The response's close, never the request's: the request closes as soon as its body is read.
    // HTTP/2's compatibility layer reports writableFinished even for a cancelled stream, so a
    // response counts as finished only when it was also ended.
    // `on`, not `once`: a response closes once, and once() would add a wrapper per connection.
    // One listener function for every response, which finds its sink on the response: a
    // closure per sink costs about 100 bytes, a WeakMap entry 15 more than the property.
    this.closeListener = listener;
    (this.res as { [kSink]?: NodeSink })[kSink] = this;
    this.res.on('close', onResponseClose);
  }

  responseClosed(): void {
    const listener = this.closeListener;
    this.closeListener = undefined;
    listener?.sinkClosed(!(this.res.writableEnded && this.res.writableFinished));
  }

  end(): void {
    this.flush();
    this.res.end();
  }

  destroy(): void {
    this.pending = '';
    this.pendingBytes = 0;
    this.res.destroy();
  }
}
