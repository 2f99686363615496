import type { SseClientError } from './errors.js';
import type { ClientEvent, ClientEventMap, EventSourceOptions, SourceState, TypedEventSource } from './types.js';

/**
 * The side of a source that a connection feeds: whether it reads the server itself or hears a
 * leader tab, it hands the hub events, the state and the end.
 */
export interface Hub {
  readonly state: SourceState;
  lastEventId: string | undefined;
  setState(state: SourceState): void;
  /**
   * Dispatches one event to listeners and iterators, its data parsed once. `id` is the event's
   * own id field, if it had one (its `lastEventId` may come from an earlier event).
   */
  emit(type: string, text: string, id?: string): void;
  /** Closes the source for good, with the error that closed it, if any. */
  end(error?: SseClientError): void;
  /** Calls `listener` once when the source closes. */
  onEnd(listener: () => void): void;
}

interface Consumer {
  push(event: ClientEvent<any>): void;
  wake(): void;
}

// The default parse: JSON when it is JSON, the text as it is otherwise.
function parseData(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

// A listener that throws must not stop the others, nor the stream: report it as the platform
// reports an uncaught error (browsers, Deno and Bun have reportError; Node throws it out of a task).
function report(error: unknown): void {
  const { reportError } = globalThis as { reportError?: (error: unknown) => void };
  if (reportError) reportError(error);
  else
    setTimeout(() => {
      throw error;
    });
}

/** Makes a source and the hub that feeds it. */
export function createHub<TEvents extends ClientEventMap>(
  url: string,
  options: EventSourceOptions<TEvents>,
): { source: TypedEventSource<TEvents>; hub: Hub } {
  const parse = options.parse ?? parseData;
  const listeners = new Map<string, Set<(data: unknown, event: ClientEvent<any>) => void>>();
  const consumers = new Set<Consumer>();
  const endListeners: Array<() => void> = [];
  let state: SourceState = 'connecting';
  let failure: SseClientError | undefined;

  const hub: Hub = {
    get state() {
      return state;
    },
    lastEventId: options.lastEventId,
    setState(next) {
      if (state !== 'closed') state = next;
    },
    emit(type, text) {
      if (state === 'closed') return;
      let data: unknown;
      try {
        data = parse(text, type);
      } catch (error) {
        // An application's parse that throws: reported, like a listener's error, and the
        // stream goes on. Its event has no data to give.
        return report(error);
      }
      const event = { type, data, id: hub.lastEventId } as ClientEvent<any>;
      for (const listener of listeners.get(type) ?? []) {
        try {
          listener(event.data, event);
        } catch (error) {
          report(error);
        }
      }
      for (const consumer of consumers) consumer.push(event);
    },
    end(error) {
      if (state === 'closed') return;
      state = 'closed';
      failure = error;
      for (const consumer of consumers) consumer.wake();
      for (const listener of endListeners.splice(0)) listener();
    },
    onEnd(listener) {
      if (state === 'closed') listener();
      else endListeners.push(listener);
    },
  };

  const source: TypedEventSource<TEvents> = {
    url,
    get state() {
      return state;
    },
    get lastEventId() {
      return hub.lastEventId;
    },
    on(type, listener) {
      let set = listeners.get(type);
      if (!set) listeners.set(type, (set = new Set()));
      const added = listener as (data: unknown, event: ClientEvent<any>) => void;
      set.add(added);
      return () => void set.delete(added);
    },
    close() {
      hub.end();
    },
    // Typed by TypedEventSource; spelled out here, TypeScript cannot see a generic ClientEvent as
    // the same type twice.
    [Symbol.asyncIterator](): AsyncIterator<any> {
      // Each iterator gets every event from the moment it starts, in order.
      const queue: Array<ClientEvent<any>> = [];
      let waiting: (() => void) | undefined;
      const consumer: Consumer = {
        push(event) {
          queue.push(event);
          consumer.wake();
        },
        wake() {
          waiting?.();
          waiting = undefined;
        },
      };
      consumers.add(consumer);
      const done = () => {
        consumers.delete(consumer);
        queue.length = 0;
        return { done: true as const, value: undefined };
      };
      return {
        async next() {
          for (;;) {
            if (queue.length) return { done: false, value: queue.shift() };
            if (state === 'closed') {
              done();
              if (failure) throw failure;
              return { done: true, value: undefined };
            }
            await new Promise<void>((resolve) => (waiting = resolve));
          }
        },
        return: () => Promise.resolve(done()),
      };
    },
  };
  return { source, hub };
}
