/**
 * The inside of an app instance for the backplanes' multi-instance tests. A backplane package's
 * fixture, run as its own process with `node --import tsx`, makes its backplane from what its
 * parent put in the environment and hands it to {@link serveInstance}, which does the rest.
 */
import { createChannel, type Backplane } from '@ssekit/core';
import { startApp, type Framework } from './servers.js';

/** What the parent asks of an instance over IPC. */
export type InstanceRequest = { type: 'publish'; count: number; maxPauseMs: number; concurrency?: number } | { type: 'close' };
/** What an instance tells its parent over IPC. */
export type InstanceReply = { type: 'ready'; url: string } | { type: 'published'; ids: string[]; failures: string[] } | { type: 'closed' };

/** A variable of the instance's environment, as its parent set it; empty when it did not. */
export const instanceEnv = (name: string): string => process.env[name] ?? '';

/** Writes an error to stderr under the instance's name: the parent shows it when a test fails. */
export function reportError(error: unknown): void {
  console.error(`[${instanceEnv('NAME')}]`, String(error));
}

/** The backplane an instance serves, and how to end what the fixture opened for it. */
export interface InstanceBackplane {
  readonly backplane: Backplane;
  /** Ends the backplane's client, pool or connection, once the backplane has closed. */
  end(): void | Promise<void>;
}

/**
 * Serves one channel on `backplane` at /events, on the framework FRAMEWORK names (from the test
 * kit, on port 0), and tells the parent its URL. Then it publishes on request (events `n`, each
 * `{ from: NAME, n }`), from several concurrent loops if asked, and closes everything on request.
 *
 * @example
 * ```ts
 * const backplane = createRedisBackplane({ client, prefix: instanceEnv('PREFIX'), onError: reportError });
 * await serveInstance({ backplane, end: () => client.disconnect() });
 * ```
 */
export async function serveInstance({ backplane, end }: InstanceBackplane): Promise<void> {
  const name = instanceEnv('NAME');
  const send = (reply: InstanceReply) => process.send!(reply);
  const channel = createChannel<{ n: { from: string; n: number } }>({
    backplane,
    onError: (error) => console.error(`[${name}] a subscriber failed and was closed:`, String(error)),
  });
  const app = await startApp(instanceEnv('FRAMEWORK') as Framework, ({ stream }) => channel.subscribe(stream));
  let published = 0;

  process.on('message', async (request: InstanceRequest) => {
    if (request.type === 'publish') {
      const ids: string[] = [];
      const failures: string[] = [];
      const loop = async (count: number) => {
        for (let i = 0; i < count; i++) {
          try {
            ids.push(await channel.publish({ event: 'n', data: { from: name, n: ++published } }));
          } catch (error) {
            failures.push(String(error));
          }
          if (request.maxPauseMs > 0) await new Promise((resolve) => setTimeout(resolve, Math.random() * request.maxPauseMs));
        }
      };
      const loops = request.concurrency ?? 1;
      await Promise.all(
        Array.from({ length: loops }, (_, n) => loop(Math.floor(request.count / loops) + (n < request.count % loops ? 1 : 0))),
      );
      send({ type: 'published', ids, failures });
    } else if (request.type === 'close') {
      await channel.close();
      await app.close();
      await backplane.close();
      await end();
      send({ type: 'closed' });
      process.disconnect();
    }
  });

  send({ type: 'ready', url: app.url });
}
