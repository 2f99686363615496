import type { Connection } from './client.js';
import { messageOf, RedisBackplaneError } from './error.js';
import { entriesOf, type RawEntry } from './reply.js';

/**
 * The commands the backplane sends on the injected client, each within a deadline, each failing
 * with a {@link RedisBackplaneError}.
 */
export class Commands {
  constructor(
    private readonly connection: Connection,
    private readonly timeoutMs: number,
  ) {}

  /** Whether a command sent now goes straight out on a live connection. */
  ready(): boolean {
    return this.connection.ready();
  }

  /**
   * Sends one command, rejecting after the deadline, or at once with `failFast` when the client
   * is not connected: a publish must not wait in the client's offline queue, to be sent after it
   * was rejected. `what` names the command in the error message.
   */
  send(args: string[], what: string, { failFast = false } = {}): Promise<unknown> {
    if (failFast && !this.connection.ready()) {
      return Promise.reject(new RedisBackplaneError(`${what} failed: the Redis client is not connected.`, { sent: false }));
    }
    const timeoutMs = this.timeoutMs;
    // Drops a command that node-redis has not written yet, so that it surely never runs.
    const abort = new AbortController();
    return new Promise((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        abort.abort();
        // A command that was never written rejects with an AbortError first (node-redis).
        setImmediate(() => {
          if (settled) return;
          settled = true;
          reject(new RedisBackplaneError(`${what} failed: Redis did not answer within ${timeoutMs} ms.`, { sent: true }));
        });
      }, timeoutMs);
      this.connection.send(args, abort.signal).then(
        (reply) => {
          clearTimeout(timer);
          if (settled) return;
          settled = true;
          resolve(reply);
        },
        (error: unknown) => {
          clearTimeout(timer);
          if (settled) return;
          settled = true;
          const unsent = abort.signal.aborted && (error as Error | undefined)?.name === 'AbortError';
          const why = unsent ? `Redis did not answer within ${timeoutMs} ms` : messageOf(error);
          reject(new RedisBackplaneError(`${what} failed: ${why}.`, { cause: error, sent: !unsent }));
        },
      );
    });
  }

  /** The newest entry of the stream at `key`, if it has any. */
  async newest(key: string): Promise<RawEntry | undefined> {
    return entriesOf(await this.send(['XREVRANGE', key, '+', '-', 'COUNT', '1'], `Reading the newest entry of ${key}`))[0];
  }
}
