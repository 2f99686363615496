import { connect } from './connection.js';
import { SseClientError, type SseClientErrorCode } from './errors.js';
import type { Hub } from './hub.js';
import type { EventSourceOptions, SourceState } from './types.js';

/** What the leader tab tells the others. */
type Message =
  | { readonly kind: 'event'; readonly type: string; readonly text: string; readonly id: string | undefined }
  | { readonly kind: 'id'; readonly id: string }
  | { readonly kind: 'state'; readonly state: SourceState }
  | {
      readonly kind: 'closed';
      readonly code: SseClientErrorCode | undefined;
      readonly message: string;
      readonly status: number | undefined;
    }
  | { readonly kind: 'hello' };

/** How many recent ids a tab remembers, to drop what a new leader's resume sends twice. */
const SEEN_IDS = 512;

/**
 * Shares one connection between every tab of this origin that opens `url`. The tabs elect a
 * leader with a Web Lock: it holds the connection and forwards each event, with its id, over a
 * BroadcastChannel. When its tab closes, the lock passes to another tab, which resumes from the
 * last id it saw; a tab that was ahead of it drops the events it already has, by id.
 */
export function shareAcrossTabs(url: string, options: EventSourceOptions<any>, hub: Hub): void {
  const name = `ssekit:${url}`;
  const channel = new BroadcastChannel(name);
  const released = new AbortController();
  const seen = new Set<string>();
  let leading = false;

  const post = (message: Message) => channel.postMessage(message);
  /** Whether the event with this own id is new to this tab; events without one always are. */
  const remember = (id: string | undefined) => {
    if (id === undefined || id === '') return true;
    if (seen.has(id)) return false;
    seen.add(id);
    if (seen.size > SEEN_IDS) seen.delete(seen.values().next().value!);
    return true;
  };

  channel.onmessage = ({ data }: MessageEvent<Message>) => {
    if (data.kind === 'hello') {
      // A new tab learns where the feed is, so that it too could resume from there.
      if (!leading) return;
      post({ kind: 'state', state: hub.state });
      if (hub.lastEventId !== undefined) post({ kind: 'id', id: hub.lastEventId });
    } else if (data.kind === 'state') {
      hub.setState(data.state);
    } else if (data.kind === 'closed') {
      hub.end(data.code ? new SseClientError(data.code, data.message, { status: data.status }) : undefined);
    } else if (data.kind === 'id') {
      // Id-only blocks too (a channel marks a new client's place with one), so that this tab,
      // should it lead next, resumes exactly where the leader was.
      hub.lastEventId = data.id;
    } else if (remember(data.id)) {
      hub.emit(data.type, data.text, data.id);
    }
  };

  // The leader reads the server into a hub of its own making: this tab's, plus the others.
  const lead = () =>
    new Promise<void>((resolve) => {
      leading = true;
      const forwarding: Hub = {
        get state() {
          return hub.state;
        },
        get lastEventId() {
          return hub.lastEventId;
        },
        set lastEventId(id) {
          hub.lastEventId = id;
          if (id !== undefined) post({ kind: 'id', id });
        },
        setState(state) {
          hub.setState(state);
          post({ kind: 'state', state });
        },
        emit(type, text, id) {
          if (!remember(id)) return;
          post({ kind: 'event', type, text, id });
          hub.emit(type, text, id);
        },
        end(error) {
          post({ kind: 'closed', code: error?.code, message: error?.message ?? '', status: error?.status });
          hub.end(error);
        },
        onEnd: (listener) => hub.onEnd(listener),
      };
      const stop = connect(url, options, forwarding);
      // This tab's source closed: hand the connection over to another tab.
      hub.onEnd(() => {
        stop();
        resolve();
      });
    });

  void navigator.locks.request(name, { signal: released.signal }, lead).catch(() => {
    // Aborted: this tab closed before it ever led.
  });
  hub.onEnd(() => {
    released.abort();
    channel.close();
  });
  post({ kind: 'hello' });
}
