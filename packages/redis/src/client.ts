import { SseError } from '@ssekit/core';

/** The part of an ioredis client (versions 5 and 6) that the backplane uses. */
export interface IoRedisClient {
  readonly status: string;
  call(command: string, args: Array<string | number>): Promise<unknown>;
  duplicate(): IoRedisClient;
  disconnect(reconnect?: boolean): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
  off(event: 'error', listener: (error: Error) => void): unknown;
}

/** The part of a node-redis client (`redis` versions 5 and 6) that the backplane uses. */
export interface NodeRedisClient {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  sendCommand(args: ReadonlyArray<string>, options?: { abortSignal?: AbortSignal }): Promise<unknown>;
  duplicate(): NodeRedisClient;
  connect(): Promise<unknown>;
  destroy(): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
  off(event: 'error', listener: (error: Error) => void): unknown;
}

/** A client of either flavour, as the user made and connected it. */
export type RedisClient = IoRedisClient | NodeRedisClient;

/** One connection, whatever the flavour: raw commands in, raw replies out. */
export interface Connection {
  /** Whether a command sent now goes straight out on a live connection. */
  ready(): boolean;
  /**
   * Sends one command. `signal` drops it while it still waits to be written (node-redis);
   * once written, only the reply or a broken connection settles it.
   */
  send(args: string[], signal?: AbortSignal): Promise<unknown>;
}

/** A connection the backplane made for itself, and so closes itself. */
export interface OwnedConnection extends Connection {
  /** Closes the connection at once and removes the listener the backplane added. */
  close(): void;
}

/** The client's own key prefix, an option of ioredis and of node-redis 6. */
const keyPrefixOf = (client: RedisClient): unknown => (client as { options?: { keyPrefix?: unknown } }).options?.keyPrefix;

const isIoRedis = (client: RedisClient): client is IoRedisClient =>
  typeof (client as IoRedisClient).call === 'function' && typeof (client as IoRedisClient).status === 'string';
const isNodeRedis = (client: RedisClient): client is NodeRedisClient =>
  typeof (client as NodeRedisClient).sendCommand === 'function' && typeof (client as NodeRedisClient).isReady === 'boolean';

/** Checks the injected client once and wraps it; the backplane never closes it. */
export function wrapClient(client: RedisClient): Connection {
  if (client && isIoRedis(client)) {
    if (keyPrefixOf(client)) {
      // ioredis would prefix some of the keys in XREAD/XADD and not others; one prefix is enough.
      throw new SseError('ERR_SSE_INVALID_OPTION', 'The ioredis client has a keyPrefix; use the backplane\u2019s prefix option instead.');
    }
    return { ready: () => client.status === 'ready', send: (args) => client.call(args[0]!, args.slice(1)) };
  }
  if (client && isNodeRedis(client)) {
    if (keyPrefixOf(client)) {
      throw new SseError(
        'ERR_SSE_INVALID_OPTION',
        'The node-redis client has a keyPrefix; use the backplane\u2019s prefix option instead.',
      );
    }
    return { ready: () => client.isReady, send: (args, signal) => client.sendCommand(args, signal ? { abortSignal: signal } : undefined) };
  }
  throw new SseError('ERR_SSE_INVALID_OPTION', 'client must be an ioredis or a node-redis (`redis`) client.');
}

/**
 * A second connection with the injected client's settings, for the blocking reader: a blocking
 * XREAD holds its connection, so it cannot share the user's.
 */
export function duplicateClient(client: RedisClient, onError: (error: Error) => void): OwnedConnection {
  if (isIoRedis(client)) {
    const reader = client.duplicate(); // connects by itself, unless the original is lazyConnect
    reader.on('error', onError);
    return {
      ready: () => reader.status === 'ready',
      send: (args) => reader.call(args[0]!, args.slice(1)),
      close() {
        reader.disconnect();
        reader.off('error', onError);
      },
    };
  }
  const reader = client.duplicate();
  // node-redis throws an 'error' event that nobody listens to: the listener comes first.
  reader.on('error', onError);
  // connect() retries by itself until it succeeds or the client is destroyed; commands sent
  // meanwhile wait in its offline queue.
  const connecting = reader.connect().catch(() => {});
  return {
    ready: () => reader.isReady,
    send: (args, signal) => reader.sendCommand(args, signal ? { abortSignal: signal } : undefined),
    close() {
      if (reader.isOpen) reader.destroy();
      // A destroyed socket may still report its last error a tick later.
      void connecting.finally(() => setImmediate(() => reader.off('error', onError)));
    },
  };
}
