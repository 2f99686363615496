import { createParser, type EventSourceMessage } from 'eventsource-parser';
import type { SseSink, SseSinkCloseListener } from '@ssekit/core/adapter';

/** An in-memory sink: what the stream writes, parsed, with a socket you can fill and drain. */
export interface MemorySink extends SseSink {
  readonly chunks: string[];
  readonly events: EventSourceMessage[];
  readonly headers: Readonly<Record<string, string>> | undefined;
  /** The plain answer given instead of an event stream, if any. */
  readonly rejection:
    { status: number; contentType: string; body: string; headers: Readonly<Record<string, string>> | undefined } | undefined;
  /** Stops consuming: writes pile up in `bufferedBytes` and return false past `highWaterMark`. */
  stall(): void;
  /** Consumes everything buffered and fires drain. */
  drain(): void;
  /** The client goes away. */
  leave(): void;
}

export function createMemorySink({
  lastEventId,
  highWaterMark = 16 * 1024,
}: { lastEventId?: string; highWaterMark?: number } = {}): MemorySink {
  const chunks: string[] = [];
  const events: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => events.push(event) });
  let headers: Record<string, string> | undefined;
  let rejection: MemorySink['rejection'];
  let stalled = false;
  let buffered = 0;
  let closedBy: 'server' | 'client' | undefined;
  const drainListeners = new Set<() => void>();
  const closeListeners: SseSinkCloseListener[] = [];
  const close = (clientLeft: boolean) => {
    if (closedBy) return;
    closedBy = clientLeft ? 'client' : 'server';
    for (const listener of closeListeners.splice(0)) listener.sinkClosed(clientLeft);
  };
  const sink: MemorySink = {
    lastEventIdHeader: lastEventId,
    get closedBy() {
      return closedBy;
    },
    get bufferedBytes() {
      return buffered;
    },
    get headersSent() {
      return headers !== undefined || rejection !== undefined;
    },
    chunks,
    events,
    get headers() {
      return headers;
    },
    get rejection() {
      return rejection;
    },
    reject(status, contentType, body, extra) {
      rejection = { status, contentType, body, headers: extra };
      close(false);
    },
    open(head, firstChunk) {
      headers = { ...head };
      return firstChunk === undefined ? true : sink.write(firstChunk);
    },
    write(chunk) {
      if (closedBy) return false;
      chunks.push(chunk);
      if (!stalled) {
        parser.feed(chunk);
        return true;
      }
      buffered += Buffer.byteLength(chunk);
      return buffered < highWaterMark;
    },
    onceDrain(listener) {
      // As the contract asks: a drain that already came counts.
      if (buffered < highWaterMark) queueMicrotask(listener);
      else drainListeners.add(listener);
    },
    offDrain(listener) {
      drainListeners.delete(listener);
    },
    onClose(listener) {
      closeListeners.push(listener);
    },
    end: () => close(false),
    destroy: () => close(true),
    stall() {
      stalled = true;
    },
    drain() {
      stalled = false;
      // What was held back reaches the client now, in order.
      let from = chunks.length;
      for (let bytes = 0; bytes < buffered;) bytes += Buffer.byteLength(chunks[--from]!);
      for (const chunk of chunks.slice(from)) parser.feed(chunk);
      buffered = 0;
      const listeners = [...drainListeners];
      drainListeners.clear();
      for (const listener of listeners) listener();
    },
    leave: () => close(true),
  };
  return sink;
}
