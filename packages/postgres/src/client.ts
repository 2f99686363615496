import { SseError } from '@ssekit/core';
import type { Driver, DriverOptions } from './driver.js';
import { pgDriver } from './pg-driver.js';
import { postgresJsDriver } from './postgres-js-driver.js';

/** A connection that node-postgres' pool lends, as far as the backplane uses it. */
export interface PgPoolClient {
  query(config: { text: string; values?: any[] }): Promise<{ rows: any[] }>;
  release(destroy?: Error | boolean): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
  removeListener(event: 'error', listener: (error: Error) => void): unknown;
}

/**
 * The part of a node-postgres (`pg`) `Pool` that the backplane uses. The backplane also opens
 * its listening connection with the pool's own client class and options, as the pool opens its
 * connections.
 */
export interface PgPool {
  connect(): Promise<PgPoolClient>;
  readonly options: object;
}

/** A query of postgres.js: a promise of rows, sent when awaited, which can be cancelled. */
export interface PostgresJsQuery extends PromiseLike<readonly any[]> {
  cancel(): unknown;
}

/** What postgres.js hands a transaction callback, as far as the backplane uses it. */
export interface PostgresJsTransaction {
  unsafe(query: string, parameters?: any[], options?: { prepare?: boolean }): PostgresJsQuery;
}

/** The part of a postgres.js (`postgres`, versions 3 and 4) `sql` instance that the backplane uses. */
export interface PostgresJsSql {
  unsafe(query: string, parameters?: any[], options?: { prepare?: boolean }): PostgresJsQuery;
  listen(channel: string, onnotify: (payload: string) => void, onlisten?: () => void): Promise<{ unlisten(): Promise<unknown> }>;
  begin<T>(callback: (sql: PostgresJsTransaction) => T | Promise<T>): Promise<unknown>;
}

/** A pool of either library, as the application made it. */
export type PostgresPool = PgPool | PostgresJsSql;

const isPostgresJs = (pool: PostgresPool): pool is PostgresJsSql =>
  typeof pool === 'function' &&
  typeof (pool as PostgresJsSql).unsafe === 'function' &&
  typeof (pool as PostgresJsSql).listen === 'function' &&
  typeof (pool as PostgresJsSql).begin === 'function';

const isPg = (pool: PostgresPool): pool is PgPool =>
  typeof pool === 'object' &&
  pool !== null &&
  typeof (pool as PgPool).connect === 'function' &&
  typeof (pool as PgPool).options === 'object' &&
  typeof (pool as { Client?: unknown }).Client === 'function';

/** Checks the injected pool once and wraps it; the backplane never ends it. */
export function driverFor(pool: PostgresPool, options: DriverOptions): Driver {
  if (pool && isPostgresJs(pool)) return postgresJsDriver(pool, options);
  if (pool && isPg(pool)) return pgDriver(pool, options);
  throw new SseError('ERR_SSE_INVALID_OPTION', 'pool must be a node-postgres (`pg`) Pool or a postgres.js (`postgres`) sql instance.');
}
