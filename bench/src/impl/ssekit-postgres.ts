/**
 * ssekit on node:http with its channel on a PostgreSQL backplane (`@ssekit/postgres`, on a pg
 * Pool): the instances that share `BENCH_BACKPLANE_NAMESPACE` (the table) share one feed.
 * Scenario H runs two of them.
 */
import http from 'node:http';
import pg from 'pg';
import { createChannel } from '@ssekit/core';
import { createSseStream } from '@ssekit/core/node';
import { createPostgresBackplane } from '@ssekit/postgres';
import { listen, notFound, type BenchServer, type Payloads } from './common.js';

export async function start(): Promise<BenchServer> {
  const table = process.env.BENCH_BACKPLANE_NAMESPACE;
  if (!table) throw new Error('ssekit-postgres: BENCH_BACKPLANE_NAMESPACE is not set');
  const pool = new pg.Pool({ connectionString: process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test', max: 4 });
  const backplane = createPostgresBackplane({ pool, table });
  const channel = createChannel<Payloads>({ backplane });
  const server = http.createServer((req, res) => {
    if (req.url === '/events') channel.subscribe(createSseStream(req, res));
    else notFound(res);
  });
  return {
    port: await listen(server),
    streams: () => channel.size,
    publish: (data) => channel.publish({ data }),
    hasSingle: () => false,
    sendSingle: () => {
      throw new Error('ssekit-postgres serves no single stream');
    },
    async dispose() {
      await channel.close();
      await backplane.close();
      await pool.query(`DROP TABLE IF EXISTS "${table}", "${table}_channels"`).catch(() => {});
      await pool.end();
    },
  };
}
