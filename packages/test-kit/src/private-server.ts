/**
 * Servers of a test's own (Redis, NATS, PostgreSQL), which it may stop and start again on the
 * same port and data, as a deploy or a crash would; the shared servers the other tests use are
 * never stopped. How a server runs is its backplane package's business. The temporary
 * directory, the port, and the clean-up, at close and when the test process exits, are shared.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './nginx.js';

/** A server of the test's own. `THow` names the ways to stop it: signals, or pg_ctl's modes. */
export interface PrivateServer<THow extends string> {
  readonly url: string;
  /** Stops the server, as a deploy or (the harder ways) a crash would; its data stays. */
  stop(how?: THow): Promise<void>;
  /** Starts it again on the same port and data; resolves once it answers. */
  start(): Promise<void>;
  /** Stops it for good and removes its data. */
  close(): Promise<void>;
}

/** How to run one server, made for its directory and port. */
export interface ServerControl<THow extends string> {
  readonly url: string;
  /** Resolves once the server answers. */
  start(): Promise<void>;
  stop(how?: THow): Promise<void>;
  /** Stops it for good, as fast as it goes: at close. */
  halt(): Promise<void>;
  /** Stops it without waiting: when the test process exits with the server still up. */
  kill(): void;
}

/**
 * Makes a temporary directory `ssekit-<kind>-…` and picks a free loopback port, has `setUp` make
 * the server's control for them, and starts the server. Anything it made is removed again when
 * the first start fails.
 *
 * @example
 * ```ts
 * const redis = await startPrivateServer('redis', (dir, port) =>
 *   serverProcess({ url: `redis://127.0.0.1:${port}`, command: 'redis-server', args: [...], install, ready }),
 * );
 * ```
 */
export async function startPrivateServer<THow extends string>(
  kind: string,
  setUp: (dir: string, port: number) => ServerControl<THow> | Promise<ServerControl<THow>>,
): Promise<PrivateServer<THow>> {
  const dir = await mkdtemp(path.join(tmpdir(), `ssekit-${kind}-`));
  let control: ServerControl<THow> | undefined;
  const killOnExit = () => control?.kill();
  process.once('exit', killOnExit);
  const close = async () => {
    await control?.halt();
    process.off('exit', killOnExit);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    control = await setUp(dir, await freePort());
    await control.start();
  } catch (error) {
    await close().catch(() => {});
    throw error;
  }
  const { url, start, stop } = control;
  return { url, start, stop, close };
}

/** A server binary run as a child process of the test. */
export interface ServerProcessOptions {
  readonly url: string;
  readonly command: string;
  readonly args: readonly string[];
  /** How to install the binary, for the error when it cannot run. */
  readonly install: string;
  /** Whether the server answers yet; `output` is what it has written so far. */
  ready(output: () => string): Promise<boolean>;
}

/**
 * The control of a server run as a child process (redis-server, nats-server): started with the
 * same arguments each time, polled with `ready` for up to 10 s, and stopped with a signal,
 * SIGTERM by default; `halt` is SIGKILL.
 */
export function serverProcess({ url, command, args, install, ready }: ServerProcessOptions): ServerControl<'SIGTERM' | 'SIGKILL'> {
  let child: ChildProcess | undefined;
  let output = '';
  const start = async () => {
    output = '';
    const server = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = server;
    const keep = (chunk: string) => (output = (output + chunk).slice(-5000));
    server.stdout.setEncoding('utf8').on('data', keep);
    server.stderr.setEncoding('utf8').on('data', keep);
    const failed = new Promise<never>((_, reject) => {
      server.once('error', (error) => reject(new Error(`${command} could not run (${error.message}). Install it: \`${install}\`.`)));
      server.once('exit', (code) => reject(new Error(`${command} exited with code ${code}:\n${output}`)));
    });
    failed.catch(() => {});
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (await Promise.race([ready(() => output), failed])) return;
      if (Date.now() > deadline) throw new Error(`${command} at ${url} did not answer within 10 s:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const stop = async (signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM') => {
    const server = child;
    if (!server || server.exitCode !== null || server.signalCode !== null) return;
    const exited = new Promise((resolve) => server.once('exit', resolve));
    server.kill(signal);
    await exited;
  };
  return { url, start, stop, halt: () => stop('SIGKILL'), kill: () => void child?.kill('SIGKILL') };
}
