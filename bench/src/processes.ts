/**
 * The orchestrator's child processes: forking them (tsx, `--expose-gc`, IPC), waiting until they
 * are ready, keeping the tail of their stderr, and stopping them. The servers and the load
 * clients are both such children (see server-process.ts and load-clients.ts).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { BENCH_DIR } from './bench-dir.js';
import type { Peer } from './rpc.js';

const EXEC_ARGV = ['--import', import.meta.resolve('tsx'), '--expose-gc'];

export interface ForkOptions {
  /** The node binary. @default process.execPath */
  readonly execPath?: string;
  /** Added to this process's environment. */
  readonly env?: Readonly<Record<string, string>>;
}

/** Forks `src/<file>` with an IPC channel; its stdout is this process's, its stderr piped. */
export function forkChild(file: string, args: readonly string[], options: ForkOptions = {}): ChildProcess {
  return fork(path.join(BENCH_DIR, 'src', file), args, {
    cwd: BENCH_DIR,
    execPath: options.execPath ?? process.execPath,
    execArgv: EXEC_ARGV,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    serialization: 'advanced',
  });
}

/** What a child says once it is ready: a server adds its port and when it began listening (µs). */
export interface Ready {
  readonly port?: number;
  readonly listeningAt?: number;
}

/** Resolves with the child's `{ ready: true }` message. */
export function waitReady(child: ChildProcess, name: string, timeoutMs = 30_000): Promise<Ready> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} was not ready within ${timeoutMs} ms`)), timeoutMs);
    child.on('message', (message: Ready & { ready?: boolean }) => {
      if (message.ready) {
        clearTimeout(timer);
        resolve(message);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited before it was ready (${signal ?? `code ${code}`})`));
    });
  });
}

/** Asks the child to exit, and kills it if it has not within 5 s. */
export async function stop(child: ChildProcess, peer: Peer | undefined): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  await peer?.call('exit', {}, 5_000).catch(() => {});
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** Keeps the tail of a child's stderr, to print when its run fails; `echo` also passes it on. */
export function tailOf(child: ChildProcess, prefix: string, echo: boolean): () => string {
  let tail = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    if (echo) process.stderr.write(chunk.replace(/^(?=.)/gm, prefix));
    tail = (tail + chunk).slice(-4000);
  });
  return () => tail;
}
