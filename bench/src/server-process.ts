/**
 * A server under test, seen from the orchestrator: a fresh process per run (`server.ts <impl>`),
 * its URL on 127.0.0.1, and its requests over IPC.
 */
import { forkChild, stop, tailOf, waitReady, type ForkOptions } from './processes.js';
import { Peer } from './rpc.js';
import { RunFailure } from './run-failure.js';
import type { PublishArgs, ServerStats } from './server.js';
import type { Implementation } from './servers.js';

export type { ServerStats } from './server.js';

export interface ServerProcess {
  readonly peer: Peer;
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Its streams, CPU, memory and handles; after full garbage collections when `gc`. */
  stats(gc?: boolean): Promise<ServerStats>;
  /** Publishes to its broadcast; resolves after the last publish, with when the first began (µs). */
  publish(args: PublishArgs, timeoutMs: number): Promise<{ t0: number; t1: number }>;
  /** Polls its stats until `done` holds; a {@link RunFailure} after `timeoutMs`. */
  until(what: string, done: (stats: ServerStats) => boolean, timeoutMs?: number): Promise<void>;
}

/**
 * Runs `count` server processes of `impl`, each on its own port, for the length of `run`, then
 * stops them. A failure carries the tail of their stderr (a crash report, say).
 */
export async function withServerProcesses<T>(
  impl: Implementation,
  count: number,
  options: ForkOptions,
  run: (servers: ServerProcess[]) => Promise<T>,
): Promise<T> {
  const children = Array.from({ length: count }, () => forkChild('server.ts', [impl], options));
  const stderrs = children.map((child) => tailOf(child, `[${impl}] `, false));
  const peers = children.map((child) => new Peer(`server ${impl}`, child));
  try {
    const servers = await Promise.all(
      children.map(async (child, i) => {
        const { port } = await waitReady(child, `server ${impl}`);
        return serverProcess(peers[i]!, `http://127.0.0.1:${port}`);
      }),
    );
    return await run(servers);
  } catch (error) {
    const tail = stderrs
      .map((stderr) => stderr().trim())
      .filter(Boolean)
      .join('\n');
    if (tail) (error as Error).message += `\n  server stderr:\n${tail.replace(/^/gm, '    ')}`;
    throw error;
  } finally {
    await Promise.all(children.map((child, i) => stop(child, peers[i])));
  }
}

function serverProcess(peer: Peer, url: string): ServerProcess {
  const stats = (gc = false) => peer.call<ServerStats>('stats', { gc }, 60_000);
  return {
    peer,
    url,
    stats,
    publish: (args, timeoutMs) => peer.call('publish', { ...args }, timeoutMs),
    async until(what, done, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (!done(await stats())) {
        if (Date.now() > deadline) throw new RunFailure(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
  };
}
