/**
 * The public backplane contract of @ssekit/core, once per client library (node-postgres, and
 * postgres.js at both majors its peer range claims), against a PostgreSQL of this file's own,
 * which the outage test stops and starts again.
 */
import type { Backplane } from '@ssekit/core';
import { runBackplaneContract } from '@ssekit/core/testing';
import { createPostgresBackplane } from '../src/index.js';
import { connect, FLAVOURS, startPrivatePostgres, uniqueTable, type PrivatePostgres, type TestPool } from './postgres.js';

jest.setTimeout(60_000);

let server: PrivatePostgres;
const table = uniqueTable('contract');

beforeAll(async () => {
  server = await startPrivatePostgres();
}, 60_000);
afterAll(() => server?.close(), 60_000);

for (const flavour of FLAVOURS) {
  const pools: TestPool[] = [];
  runBackplaneContract(`PostgreSQL (${flavour})`, {
    // One pool per backplane, as each instance of an application has its own.
    create: async ({ maxLen }): Promise<Backplane> => {
      const pool = await connect(flavour, server.url);
      pools.push(pool);
      return createPostgresBackplane({ pool: pool.pool, table, maxLen, onError: () => {} });
    },
    engine: { stop: () => server.stop(), start: () => server.start() },
    // Channel names are unique per test, and the whole server goes at the end: only the pools
    // are left to end.
    cleanup: async () => {
      for (const pool of pools.splice(0)) await pool.close();
    },
  });
}
