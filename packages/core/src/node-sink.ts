import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { SseError } from './errors.js';
import type { SseSink } from './sink.js';

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

/**
 * The sink for every Node response: plain `node:http`, `node:http2` in compatibility mode, and
 * the frameworks built on them (Express, Fastify, Koa), which share this one implementation.
 */
export function createNodeSink(
  req: NodeRequest,
  res: NodeResponse,
  hooks: NodeSinkHooks = {},
): SseSink {
  return new NodeSink(req, res as FlushableResponse, hooks.beforeOpen);
}

/** The most bytes held back for coalescing, per socket: Node's default high-water mark. */
const COALESCE_BYTES = 16 * 1024;

// One setImmediate per turn uncorks every socket corked during it, however many there are.
let corkedSinks: NodeSink[] = [];
function scheduleUncork(sink: NodeSink): void {
  if (corkedSinks.push(sink) === 1) setImmediate(uncorkAll);
}
function uncorkAll(): void {
  const sinks = corkedSinks;
  corkedSinks = [];
  for (const sink of sinks) sink.uncork();
}

// Node's own write() of a chunk of an HTTP/1.1 body, which the direct path stands in for.
const nativeWrite = ServerResponse.prototype.write;

// A channel writes the same event to every subscriber: frame it once, not once per socket.
let lastChunk = '';
let lastFramed = '';
function frameChunk(chunk: string): string {
  if (chunk !== lastChunk) {
    lastFramed = Buffer.byteLength(chunk).toString(16) + '\r\n' + chunk + '\r\n';
    lastChunk = chunk;
  }
  return lastFramed;
}

class NodeSink implements SseSink {
  readonly lastEventIdHeader: string | string[] | undefined;
  private flushes = false;
  private corked = false;
  /**
   * The connection, once the stream writes its chunks to it directly: see {@link directSocket}.
   * Undefined while the head is not out, and for responses that must go through `res.write`.
   */
  private socket: Socket | undefined;

  constructor(
    private readonly req: NodeRequest,
    private readonly res: FlushableResponse,
    private readonly beforeOpen: (() => void) | undefined,
  ) {
    this.lastEventIdHeader = req.headers['last-event-id'];
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
    return (this.socket ?? this.res).writableLength;
  }

  open(headers: Readonly<Record<string, string>>, firstChunk?: string): boolean {
    const res = this.res;
    if (res.headersSent) {
      throw new SseError('ERR_SSE_HEADERS_SENT', 'The response already started, so it cannot become an event stream.');
    }
    this.beforeOpen?.();
    res.removeHeader('content-length');
    // A quiet stream is healthy: no idle timeout may kill it, and events go out at once. The
    // calls are optional because test doubles such as Fastify's inject() give partial sockets.
    if (this.req.httpVersionMajor < 2) {
      // HTTP/1.1 only: illegal on HTTP/2, where Node throws on it, and on HTTP/1.0 the body
      // ends by closing the connection.
      if (this.req.httpVersionMinor >= 1) headers = { ...headers, connection: 'keep-alive' };
      res.socket?.setTimeout?.(0);
      res.socket?.setNoDelay?.(true);
    } else {
      res.setTimeout(0);
    }
    // writeHead, not setHeader: when nothing set a header before, Node formats these straight
    // into the head and keeps no header table for the life of the response.
    (res as ServerResponse).writeHead(200, headers);
    this.flushes = typeof res.flush === 'function';
    let ok = true;
    if (firstChunk === undefined) res.flushHeaders();
    // Node sends the head and the first chunk in one packet.
    else ok = this.write(firstChunk);
    this.socket = this.directSocket();
    return ok;
  }

  /**
   * The socket to write framed chunks to, when this response allows it: HTTP/1.1 chunked
   * encoding, Node's own `write` (no compression or other middleware wrapped it), the head
   * already on this connection and nothing of ours queued in the response.
   *
   * One event is then one `socket.write` of one string, where `res.write` makes four writes
   * (size, CRLF, data, CRLF) and reads a dozen properties of the response. Under Express that
   * matters most: Express swaps the prototype of every response, which gives each its own
   * hidden class in V8, so every property read in Node's HTTP code goes megamorphic and one
   * write costs twice what it costs on plain node:http.
   */
  private directSocket(): Socket | undefined {
    const res = this.res;
    const socket = res.socket as (Socket & { _httpMessage?: unknown }) | null;
    const direct =
      res instanceof ServerResponse &&
      res.write === nativeWrite &&
      res.chunkedEncoding &&
      res.headersSent &&
      // The response holds no bytes of its own (its length is all the socket's).
      res.writableLength === (socket?.writableLength ?? -1) &&
      socket?._httpMessage === res;
    return direct ? socket! : undefined;
  }

  reject(status: number, contentType: string, body: string): void {
    const res = this.res;
    if (res.headersSent) {
      throw new SseError('ERR_SSE_HEADERS_SENT', 'The response already started, so it cannot be answered.');
    }
    this.beforeOpen?.();
    res.statusCode = status;
    res.setHeader('content-type', contentType);
    res.setHeader('content-length', Buffer.byteLength(body));
    res.end(body);
  }

  write(chunk: string): boolean {
    const socket = this.socket;
    const target = socket ?? this.res;
    // Events that reach one socket within one turn of the event loop (a channel's burst) go
    // out in one writev instead of one syscall each: the socket is corked on the first write
    // and uncorked at the end of the turn, or as soon as a full high-water mark is waiting, so
    // that what stays in user space is bounded and backpressure works as without it.
    if (!this.corked) {
      this.corked = true;
      target.cork();
      scheduleUncork(this);
    }
    // Directly, the chunk goes out framed as Node would frame it, in one call.
    const ok = socket ? socket.write(frameChunk(chunk), 'utf8') : this.res.write(chunk);
    if (!ok || target.writableLength >= COALESCE_BYTES) this.uncork();
    if (this.flushes) this.res.flush!();
    return ok;
  }

  uncork(): void {
    if (!this.corked) return;
    this.corked = false;
    (this.socket ?? this.res).uncork();
  }

  // The response emits 'drain' only after its own write() returned false; the socket always does.
  onceDrain(listener: () => void): void {
    (this.socket ?? this.res).once('drain', listener);
  }

  offDrain(listener: () => void): void {
    (this.socket ?? this.res).off('drain', listener);
  }

  onClose(listener: (clientLeft: boolean) => void): void {
    // The response's close, never the request's: the request closes as soon as its body is read.
    // HTTP/2's compatibility layer reports writableFinished even for a cancelled stream, so a
    // response counts as finished only when it was also ended.
    // `on`, not `once`: a response closes once, and once() would add a wrapper per connection.
    this.res.on('close', () => listener(!(this.res.writableEnded && this.res.writableFinished)));
  }

  end(): void {
    this.uncork();
    this.res.end();
  }

  destroy(): void {
    this.res.destroy();
  }
}
