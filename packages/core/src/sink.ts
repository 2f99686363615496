/**
 * Who hears a sink close: the stream itself, an object rather than a function, because a
 * closure per stream would be memory per connection.
 */
export interface SseSinkCloseListener {
  sinkClosed(clientLeft: boolean): void;
}

/**
 * The one thing an adapter hands to core: a byte sink with a response head. Core's stream does
 * every SSE decision (format, open, keep-alive, backpressure, close) on top of this contract,
 * so a sink only translates. Node's responses get {@link createNodeSink}; another runtime can
 * implement its own.
 */
export interface SseSink {
  /** The raw `Last-Event-ID` request header, as the server received it. */
  readonly lastEventIdHeader: string | string[] | undefined;
  /**
   * Who already closed the response, if anyone: `server` when it was ended, `client` when its
   * connection is gone. A stream made on such a response starts closed.
   */
  readonly closedBy: 'server' | 'client' | undefined;
  /** True once a head went out, whoever sent it. */
  readonly headersSent: boolean;
  /** Bytes accepted but not yet handed to the operating system. */
  readonly bufferedBytes: number;
  /**
   * Body bytes accepted so far (UTF-8), for the `ssekit:stream:close` diagnostic. Optional: a
   * sink that cannot count them cheaply leaves it out, and the diagnostic says `undefined`.
   */
  readonly bytesWritten?: number;
  /**
   * The request's URL path without its query string, for the `ssekit:stream:open` diagnostic,
   * read only while that has a subscriber. Optional.
   */
  readonly path?: string;
  /**
   * Commits status 200 with `headers` on top of those already set, then sends the head at once:
   * together with `firstChunk` when there is one, on its own otherwise.
   * @returns what {@link SseSink.write} returns for `firstChunk`.
   */
  open(headers: Readonly<Record<string, string>>, firstChunk?: string): boolean;
  /**
   * Answers with a plain response instead of an event stream (a 429 past a limit, a 503 that
   * defers), keeping the headers already set, such as CORS, and adding `headers` (lowercase
   * names). Never labelled `text/event-stream`.
   */
  reject(status: number, contentType: string, body: string, headers?: Readonly<Record<string, string>>): void;
  /** Writes one chunk. `false` means the consumer is saturated: wait for drain. */
  write(chunk: string): boolean;
  /**
   * Calls `listener` once the sink takes writes again: on the drain that ends the saturation a
   * `write` reported, or soon (never synchronously) when that drain already came. A sink must
   * not let a drain pass unheard between `write` returning false and this call.
   */
  onceDrain(listener: () => void): void;
  /** Forgets a listener given to {@link SseSink.onceDrain}. */
  offDrain(listener: () => void): void;
  /**
   * Calls `listener.sinkClosed` once when the response closes. `clientLeft` is true when the
   * connection went away before the response finished, false when the server ended it.
   */
  onClose(listener: SseSinkCloseListener): void;
  /** Ends the response gracefully, flushing what is buffered. */
  end(): void;
  /** Drops the connection and whatever is still buffered. */
  destroy(): void;
}
