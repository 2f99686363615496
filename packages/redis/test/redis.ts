/**
 * Real Redis for the tests: the server at REDIS_URL, clients of both flavours, throwaway
 * prefixes, and private redis-server processes that a test may stop and start again.
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import Redis from 'ioredis';
import { createClient } from 'redis';
import type { RedisClient } from '../src/index.js';
import { serverProcess, startPrivateServer, type PrivateServer } from '@ssekit/test-kit';

/** The Redis every test talks to, unless it starts its own. */
export const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

/** Both client libraries the backplane supports; each suite runs once per flavour. */
export const FLAVOURS = ['ioredis', 'node-redis'] as const;
export type Flavour = (typeof FLAVOURS)[number];

const HOW_TO_GET_REDIS =
  'Start one with `redis-server --daemonize yes --port 6379` (Debian/Ubuntu: `apt-get install -y redis-server`; ' +
  'macOS: `brew install redis`; or `docker run -d -p 6379:6379 redis:7`), or point REDIS_URL at one. ' +
  'These tests never skip: without Redis they fail.';

/** Sends PING over a raw socket; resolves when `url` answers PONG. */
function ping(url: string, timeoutMs = 2000): Promise<void> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname || '127.0.0.1', port: Number(port) || 6379 });
    const fail = (why: string) => {
      socket.destroy();
      reject(new Error(why));
    };
    socket.setTimeout(timeoutMs, () => fail(`no answer within ${timeoutMs} ms`));
    socket.once('error', (error) => fail(error.message));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      socket.destroy();
      // +PONG, or -NOAUTH from a server that wants a password: either way, Redis is there.
      if (/^(\+PONG|-NOAUTH)/.test(data.toString())) resolve();
      else reject(new Error(`unexpected answer ${JSON.stringify(data.toString())}`));
    });
  });
}

/** Fails the suite, with how to get one, when no Redis answers at `url`. */
export async function requireRedis(url = REDIS_URL): Promise<void> {
  try {
    await ping(url);
  } catch (error) {
    throw new Error(
      `These tests need a Redis server at ${url} (REDIS_URL), and none answered: ${(error as Error).message}. ${HOW_TO_GET_REDIS}`,
      { cause: error },
    );
  }
}

/** A connected client of `flavour`, and how to close it. */
export interface TestClient {
  readonly flavour: Flavour;
  readonly client: RedisClient;
  /** A command on this client, for test set-up and checks. */
  command(...args: string[]): Promise<unknown>;
  /** Whether the client counts itself connected. */
  ready(): boolean;
  /** Error listeners on the client: the backplane must add none to it. */
  errorListeners(): number;
  close(): Promise<void>;
}

/**
 * How a client talks to Redis: RESP2, RESP3 (the default of ioredis 6 and node-redis 6), or for
 * ioredis, RESP3 with maps as plain objects. Replies differ in shape between them.
 */
export type Protocol = 'resp2' | 'resp3' | 'resp3-objects';

export async function connect(flavour: Flavour, url = REDIS_URL, protocol: Protocol = 'resp3'): Promise<TestClient> {
  if (flavour === 'ioredis') {
    const client = new Redis(url, {
      lazyConnect: true,
      retryStrategy: (times) => Math.min(times * 50, 500),
      protocol: protocol === 'resp2' ? 2 : 3,
      ...(protocol === 'resp3-objects' ? { replyMapping: 'resp3' as const } : {}),
    });
    client.on('error', () => {}); // the tests stop Redis on purpose
    await client.connect();
    return {
      flavour,
      client,
      command: (name, ...args) => client.call(name, args),
      ready: () => client.status === 'ready',
      errorListeners: () => client.listenerCount('error'),
      close: async () => void client.disconnect(),
    };
  }
  const client = createClient({
    url,
    RESP: protocol === 'resp2' ? 2 : 3,
    socket: { reconnectStrategy: (retries) => Math.min(retries * 50, 500) },
  });
  client.on('error', () => {});
  await client.connect();
  return {
    flavour,
    client,
    command: (...args) => client.sendCommand(args),
    ready: () => client.isReady,
    errorListeners: () => client.listenerCount('error'),
    close: async () => {
      if (client.isOpen) client.destroy();
    },
  };
}

/** A key prefix no other test uses. */
export const uniquePrefix = (label = 'test') => `ssekit-test:${label}:${randomUUID().slice(0, 8)}:`;

/** Deletes every key under `prefix`. */
export async function deleteKeys(url: string, prefix: string): Promise<void> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  try {
    await client.connect();
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await client.del(...keys);
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
}

/** The number of connections the server at `url` holds right now. */
export async function connectedClients(url = REDIS_URL): Promise<number> {
  const client = new Redis(url, { lazyConnect: true });
  await client.connect();
  try {
    const list = (await client.call('CLIENT', ['LIST'])) as string;
    return list.trim().split('\n').length - 1; // less this one
  } finally {
    client.disconnect();
  }
}

/** A redis-server of the test's own: stopped as a deploy (SIGTERM: it writes its AOF) or a crash (SIGKILL) would. */
export type PrivateRedis = PrivateServer<'SIGTERM' | 'SIGKILL'>;

/**
 * Starts redis-server on a free loopback port with append-only persistence, as a deployment
 * that must not lose its streams on restart runs it. The shared server at REDIS_URL is never
 * stopped by a test.
 */
export function startPrivateRedis(): Promise<PrivateRedis> {
  return startPrivateServer('redis', (dir, port) => {
    const url = `redis://127.0.0.1:${port}`;
    return serverProcess({
      url,
      command: 'redis-server',
      args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir],
      install: 'apt-get install -y redis-server',
      ready: () =>
        ping(url, 500).then(
          () => true,
          () => false,
        ),
    });
  });
}
