/**
 * A server under test, seen from the orchestrator: a fresh process per run (`server.ts <impl>`),
 * its URL on 127.0.0.1, and its requests over IPC.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { forkChild, stop, tailOf, waitReady, type ForkOptions } from './processes.js';
import { Peer } from './rpc.js';
import { RunFailure } from './run-failure.js';
import type { Newest, PublishArgs, Published, ServerPressure, ServerStats } from './server.js';
import type { Implementation } from './servers.js';

export type { Newest, Published, ServerPressure, ServerStats } from './server.js';

export interface ServerProcess {
  readonly peer: Peer;
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Its streams, CPU, memory and handles; after full garbage collections when `gc`. */
  stats(gc?: boolean): Promise<ServerStats>;
  /** Publishes to its broadcast; resolves after the last publish, with when the first began (µs). */
  publish(args: PublishArgs, timeoutMs: number): Promise<Published>;
  /** Where its publishing stands: see {@link Newest}. */
  newest(): Promise<Newest>;
  /** Ends its publishing after the event in flight; `publish` then resolves. */
  stopPublishing(): Promise<void>;
  /** Publishes `count` events at once, amid a paced `publish`, which goes on after them on its schedule. */
  burst(count: number): Promise<void>;
  /** Polls its stats until `done` holds; a {@link RunFailure} after `timeoutMs`. */
  until(what: string, done: (stats: ServerStats) => boolean, timeoutMs?: number): Promise<void>;
}

/** A server process that its scenario started itself and may kill as a crash would (J). */
export interface KillableServer extends ServerProcess {
  /** When it was listening, in microseconds (see `nowMicros`). */
  readonly listeningAt: number;
  /** SIGKILL: no goodbye, no `retry`, no cleanup, as in a crash. Resolves once it has exited. */
  kill(): Promise<void>;
  /** Its peak RSS and its event loop's delay; only with `BENCH_LOOP_DELAY=1` in its environment. */
  pressure(reset?: boolean): Promise<ServerPressure>;
}

/**
 * Starts a server process with `env` added to its environment, of the fleet's server or of
 * another; resolves once it listens.
 */
export type StartServer = (env: Readonly<Record<string, string>>, impl?: Implementation) => Promise<KillableServer>;

/**
 * Runs `count` server processes of `impl`, each on its own port, for the length of `run`, then
 * stops them. A failure carries the tail of their stderr (a crash report, say).
 */
export function withServerProcesses<T>(
  impl: Implementation,
  count: number,
  options: ForkOptions,
  run: (servers: ServerProcess[]) => Promise<T>,
): Promise<T> {
  return withServerFleet(impl, options, async (start) => run(await Promise.all(Array.from({ length: count }, () => start({})))));
}

/**
 * Lets `run` start server processes of `impl` as it needs them, and kill them; stops those left
 * when it ends. A failure carries the tail of their stderr.
 */
export async function withServerFleet<T>(impl: Implementation, options: ForkOptions, run: (start: StartServer) => Promise<T>): Promise<T> {
  const started: { child: ChildProcess; peer: Peer; stderr: () => string }[] = [];
  const start: StartServer = async (env, server = impl) => {
    const child = forkChild('server.ts', [server], { ...options, env: { ...options.env, ...env } });
    const peer = new Peer(`server ${server}`, child);
    started.push({ child, peer, stderr: tailOf(child, `[${server}] `, false) });
    const { port, listeningAt } = await waitReady(child, `server ${server}`);
    return {
      ...serverProcess(peer, `http://127.0.0.1:${port}`),
      listeningAt: listeningAt!,
      async kill() {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = once(child, 'exit');
        child.kill('SIGKILL');
        await exited;
      },
      pressure: (reset = false) => peer.call<ServerPressure>('pressure', { reset }, 30_000),
    };
  };
  try {
    return await run(start);
  } catch (error) {
    const tail = started
      .map(({ stderr }) => stderr().trim())
      .filter(Boolean)
      .join('\n');
    if (tail) (error as Error).message += `\n  server stderr:\n${tail.replace(/^/gm, '    ')}`;
    throw error;
  } finally {
    await Promise.all(started.map(({ child, peer }) => stop(child, peer)));
  }
}

/** Where the system's ephemeral ports begin: those its outgoing connections take. */
function ephemeralPortsStart(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32768;
  } catch {
    return 32768;
  }
}

/**
 * A free port on 127.0.0.1 for a server that must come back on it after a crash (J): one below
 * the ephemeral range, so that no outgoing connection (the clients' own reconnects, thousands of
 * them) takes it while that server is down. 0, the system's pick, when that range leaves no room.
 */
export async function pickFixedPort(): Promise<number> {
  const lowest = 10_000;
  const room = ephemeralPortsStart() - lowest;
  if (room < 1000) return 0;
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = lowest + Math.floor(Math.random() * room);
    const probe = net.createServer();
    const free = await new Promise<boolean>((resolve) => {
      probe.once('error', () => resolve(false));
      probe.listen({ host: '127.0.0.1', port }, () => resolve(true));
    });
    if (free) {
      await new Promise((resolve) => probe.close(resolve));
      return port;
    }
  }
  throw new RunFailure('found no free port below the ephemeral range in 20 tries');
}

function serverProcess(peer: Peer, url: string): ServerProcess {
  const stats = (gc = false) => peer.call<ServerStats>('stats', { gc }, 60_000);
  return {
    peer,
    url,
    stats,
    publish: (args, timeoutMs) => peer.call('publish', { ...args }, timeoutMs),
    newest: () => peer.call('newest', {}, 30_000),
    stopPublishing: () => peer.call('stop-publishing', {}, 30_000),
    burst: (count) => peer.call('burst', { count }, 30_000),
    async until(what, done, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (!done(await stats())) {
        if (Date.now() > deadline) throw new RunFailure(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
  };
}
