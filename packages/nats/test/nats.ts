/**
 * Real NATS for the tests: the server at NATS_URL, connections with the reconnect settings the
 * README asks for, throwaway streams, and private nats-server processes that a test may stop
 * and start again.
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { serverProcess, startPrivateServer, type PrivateServer } from '@ssekit/test-kit';

/** The NATS server every test talks to, unless it starts its own. */
export const NATS_URL = process.env.NATS_URL || 'nats://127.0.0.1:4222';

const HOW_TO_GET_NATS =
  'Start one with `nats-server -js -a 127.0.0.1 -p 4222` (Debian/Ubuntu: `apt-get install -y nats-server`; ' +
  'macOS: `brew install nats-server`; or `docker run -d -p 4222:4222 nats:2.10 -js`), or point NATS_URL at one. ' +
  'These tests never skip: without NATS they fail.';

/** The reconnect settings of the README: every outage is survived, and noticed within 100 ms. */
export const FAST_RECONNECT = { maxReconnectAttempts: -1, reconnectTimeWait: 100, reconnectJitter: 50, pingInterval: 5000 } as const;

/** Resolves when a NATS server at `url` greets a raw socket with its INFO line. */
function hello(url: string, timeoutMs = 2000): Promise<void> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname || '127.0.0.1', port: Number(port) || 4222 });
    const fail = (why: string) => {
      socket.destroy();
      reject(new Error(why));
    };
    socket.setTimeout(timeoutMs, () => fail(`no answer within ${timeoutMs} ms`));
    socket.once('error', (error) => fail(error.message));
    socket.once('data', (data) => {
      socket.destroy();
      if (data.toString().startsWith('INFO ')) resolve();
      else fail(`unexpected greeting ${JSON.stringify(data.toString().slice(0, 40))}`);
    });
  });
}

/** Fails the suite, with how to get one, when no NATS server answers at `url`. */
export async function requireNats(url = NATS_URL): Promise<void> {
  try {
    await hello(url);
  } catch (error) {
    throw new Error(
      `These tests need a NATS server with JetStream at ${url} (NATS_URL), and none answered: ${(error as Error).message}. ${HOW_TO_GET_NATS}`,
      {
        cause: error,
      },
    );
  }
}

/** A connection with {@link FAST_RECONNECT}, as an application following the README makes it. */
export function connectNats(url = NATS_URL, options: Record<string, unknown> = {}): Promise<NatsConnection> {
  return connect({ servers: url, ...FAST_RECONNECT, ...options });
}

/** A stream name no other test uses. */
export const uniqueStream = (label = 'test') => `ssekit_test_${label}_${randomUUID().slice(0, 8)}`;

/** Deletes the stream `name` on the server at `url`, if it is there. */
export async function deleteStream(url: string, name: string): Promise<void> {
  const connection = await connect({ servers: url, maxReconnectAttempts: 0 });
  try {
    const manager = await jetstreamManager(connection, { checkAPI: false });
    await manager.streams.delete(name).catch(() => false);
  } finally {
    await connection.close();
  }
}

/** The consumers of stream `name` on the server at `url`. */
export async function consumerNames(url: string, name: string): Promise<string[]> {
  const connection = await connect({ servers: url, maxReconnectAttempts: 0 });
  try {
    const manager = await jetstreamManager(connection, { checkAPI: false });
    const names: string[] = [];
    for await (const info of manager.consumers.list(name)) names.push(info.name);
    return names;
  } finally {
    await connection.close();
  }
}

/** A nats-server of the test's own: stopped as a deploy (SIGTERM) or a crash (SIGKILL) would. */
export type PrivateNats = PrivateServer<'SIGTERM' | 'SIGKILL'>;

/**
 * Starts `nats-server -js` on a free loopback port with a store directory of its own (file
 * storage survives a restart). The shared server at NATS_URL is never stopped by a test.
 */
export function startPrivateNats(): Promise<PrivateNats> {
  return startPrivateServer('nats', (dir, port) => {
    const url = `nats://127.0.0.1:${port}`;
    return serverProcess({
      url,
      command: 'nats-server',
      args: ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir],
      install: 'apt-get install -y nats-server',
      ready: (output) =>
        hello(url, 500).then(
          () => output().includes('Server is ready'),
          () => false,
        ),
    });
  });
}

/** Polls an async `predicate` until it holds; rejects after `timeoutMs`. */
export async function until(predicate: () => Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Resolves once `connection` reports that it lost its server. */
export async function disconnected(connection: NatsConnection, timeoutMs = 5000): Promise<void> {
  const statuses = connection.status() as AsyncIterable<{ type: string }> & { stop(): void };
  const timer = setTimeout(() => statuses.stop(), timeoutMs);
  try {
    for await (const status of statuses) if (status.type === 'disconnect') return;
    throw new Error(`the connection did not report a disconnect within ${timeoutMs} ms`);
  } finally {
    clearTimeout(timer);
    statuses.stop();
  }
}
