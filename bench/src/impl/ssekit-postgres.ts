/**
 * ssekit on node:http with its channel on a PostgreSQL backplane (`@ssekit/postgres`, on a pg
 * Pool): the instances that share `BENCH_BACKPLANE_NAMESPACE` (the table) share one feed.
 * Scenario H runs two of them.
 */
import pg from 'pg';
import { createPostgresBackplane } from '@ssekit/postgres';
import { backplaneNamespace, serveBackplaneChannel } from './backplane-server.js';
import type { BenchServer } from './common.js';

export async function start(): Promise<BenchServer> {
  const table = backplaneNamespace('ssekit-postgres');
  const pool = new pg.Pool({ connectionString: process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test', max: 4 });
  return serveBackplaneChannel('ssekit-postgres', createPostgresBackplane({ pool, table }), async () => {
    await pool.query(`DROP TABLE IF EXISTS "${table}", "${table}_channels"`).catch(() => {});
    await pool.end();
  });
}
