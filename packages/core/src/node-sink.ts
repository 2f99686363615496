import type { IncomingMessage, ServerResponse } from 'node:http';
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

class NodeSink implements SseSink {
  readonly lastEventIdHeader: string | string[] | undefined;
  private flushes = false;
  private corked = false;

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
    return this.res.writableLength;
  }

  open(headers: Readonly<Record<string, string>>, firstChunk?: string): boolean {
    const res = this.res;
    if (res.headersSent) {
      throw new SseError('ERR_SSE_HEADERS_SENT', 'The response already started, so it cannot become an event stream.');
    }
    this.beforeOpen?.();
    res.statusCode = 200;
    res.removeHeader('content-length');
    for (const name in headers) res.setHeader(name, headers[name]!);
    // A quiet stream is healthy: no idle timeout may kill it, and events go out at once. The
    // calls are optional because test doubles such as Fastify's inject() give partial sockets.
    if (this.req.httpVersionMajor < 2) {
      // HTTP/1.1 only: illegal on HTTP/2, where Node throws on it, and on HTTP/1.0 the body
      // ends by closing the connection.
      if (this.req.httpVersionMinor >= 1) res.setHeader('connection', 'keep-alive');
      res.socket?.setTimeout?.(0);
      res.socket?.setNoDelay?.(true);
    } else {
      res.setTimeout(0);
    }
    this.flushes = typeof res.flush === 'function';
    if (firstChunk === undefined) {
      res.flushHeaders();
      return true;
    }
    // Node sends the head and the first chunk in one packet.
    return this.write(firstChunk);
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
    const res = this.res;
    // Events that reach one socket within one turn of the event loop (a channel's burst) go
    // out in one writev instead of one syscall each: the socket is corked on the first write
    // and uncorked at the end of the turn, or as soon as a full high-water mark is waiting, so
    // that what stays in user space is bounded and backpressure works as without it.
    if (!this.corked) {
      this.corked = true;
      res.cork();
      scheduleUncork(this);
    }
    const ok = res.write(chunk);
    if (!ok || res.writableLength >= COALESCE_BYTES) this.uncork();
    if (this.flushes) res.flush!();
    return ok;
  }

  uncork(): void {
    if (!this.corked) return;
    this.corked = false;
    this.res.uncork();
  }

  onceDrain(listener: () => void): void {
    this.res.once('drain', listener);
  }

  offDrain(listener: () => void): void {
    this.res.off('drain', listener);
  }

  onClose(listener: (clientLeft: boolean) => void): void {
    // The response's close, never the request's: the request closes as soon as its body is read.
    // HTTP/2's compatibility layer reports writableFinished even for a cancelled stream, so a
    // response counts as finished only when it was also ended.
    this.res.once('close', () => listener(!(this.res.writableEnded && this.res.writableFinished)));
  }

  end(): void {
    this.uncork();
    this.res.end();
  }

  destroy(): void {
    this.res.destroy();
  }
}
