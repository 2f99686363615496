import type { SseSink, SseSinkCloseListener } from '@ssekit/core/adapter';

/** How many bytes the body's queue holds before `write` says the consumer is saturated. */
const HIGH_WATER_MARK = 64 * 1024;

/** A sink whose bytes become a Fetch `Response` body, and what it answered instead, if anything. */
export interface WebSink extends SseSink {
  /** The body: a byte stream whose consumer is the runtime writing the response out. */
  readonly body: ReadableStream<Uint8Array>;
  /** Set when the stream was refused (a group's limit): answer this instead of the body. */
  readonly rejection:
    { status: number; contentType: string; body: string; headers: Readonly<Record<string, string>> | undefined } | undefined;
  /** The headers the stream opened with (a deferral adds `retry-after`), once it has. */
  readonly headers: Readonly<Record<string, string>> | undefined;
}

/**
 * The sink of a Fetch API response: events go into a `ReadableStream`, whose consumer (the
 * runtime sending the response) pulls them as the network takes them. Its queue is what
 * `bufferedBytes` counts, so backpressure and `maxBufferedBytes` work as on Node's sockets.
 */
export function createWebSink(request: Request): WebSink {
  const encoder = new TextEncoder();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let closedBy: 'server' | 'client' | undefined;
  let headersSent = false;
  let rejection: WebSink['rejection'];
  let openHeaders: WebSink['headers'];
  let drainListener: (() => void) | undefined;
  let wrote = false;
  let bytesWritten = 0;
  let headFlush: ReturnType<typeof setTimeout> | undefined;
  let closeListener: SseSinkCloseListener | undefined;
  const room = () => controller.desiredSize ?? 0;

  const close = (by: 'server' | 'client') => {
    if (closedBy) return;
    closedBy = by;
    clearTimeout(headFlush);
    request.signal?.removeEventListener('abort', leave);
    try {
      // What is queued is still read, then the body ends.
      controller.close();
    } catch {
      // The consumer cancelled the body already: nothing is left to end.
    }
    closeListener?.sinkClosed(by === 'client');
  };
  // The client went away: the runtime aborted the request or cancelled the body.
  const leave = () => close('client');

  const body = new ReadableStream<Uint8Array>(
    {
      start(streamController) {
        controller = streamController;
      },
      // The consumer wants more: the queue drained below its high-water mark.
      pull() {
        const listener = drainListener;
        drainListener = undefined;
        listener?.();
      },
      cancel: leave,
    },
    { highWaterMark: HIGH_WATER_MARK, size: (chunk) => chunk.byteLength },
  );
  if (request.signal?.aborted) closedBy = 'client';
  else request.signal?.addEventListener('abort', leave);

  const sink: WebSink = {
    body,
    get rejection() {
      return rejection;
    },
    get headers() {
      return openHeaders;
    },
    lastEventIdHeader: request.headers.get('last-event-id') ?? undefined,
    get closedBy() {
      return closedBy;
    },
    get headersSent() {
      return headersSent;
    },
    get bufferedBytes() {
      return closedBy ? 0 : HIGH_WATER_MARK - room();
    },
    get bytesWritten() {
      return bytesWritten;
    },
    get path() {
      return new URL(request.url).pathname;
    },
    // The head is the Response's: it was made with the SSE headers before the stream opened.
    open(headers, firstChunk) {
      headersSent = true;
      openHeaders = headers;
      if (firstChunk !== undefined) return sink.write(firstChunk);
      // Some runtimes (Bun) send the head only with the first bytes of the body. A handler that
      // writes nothing in its first turn gets a comment line, which sends it, as flushHeaders
      // does on Node: the client's open fires, and proxies see the stream start.
      headFlush = setTimeout(() => {
        if (!wrote) sink.write(':\n');
      }, 0);
      return true;
    },
    reject(status, contentType, text, headers) {
      headersSent = true;
      rejection = { status, contentType, body: text, headers };
      close('server');
    },
    write(chunk) {
      if (closedBy) return false;
      wrote = true;
      const bytes = encoder.encode(chunk);
      bytesWritten += bytes.byteLength;
      controller.enqueue(bytes);
      return room() > 0;
    },
    onceDrain(listener) {
      if (closedBy || room() > 0) queueMicrotask(listener);
      else drainListener = listener;
    },
    offDrain(listener) {
      if (drainListener === listener) drainListener = undefined;
    },
    onClose(listener) {
      closeListener = listener;
    },
    end: () => close('server'),
    // A Fetch body cannot drop what it queued, only end after it: an errored body is logged by
    // every host as a server error, so a stalled reader's body ends cleanly, its queue bounded.
    destroy: () => close('server'),
  };
  return sink;
}
