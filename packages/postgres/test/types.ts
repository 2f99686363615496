/**
 * Type tests, checked by tsc and never run: node-postgres' Pool and postgres.js' `sql` (both
 * majors) fit `pool` as they come, and anything else does not.
 */
import pg from 'pg';
import postgres from 'postgres';
import postgres3 from 'postgres3';
import type { Backplane } from '@ssekit/core';
import { createPostgresBackplane, PostgresBackplaneError, type PostgresPool } from '@ssekit/postgres';

const fromPg: Backplane = createPostgresBackplane({ pool: new pg.Pool() });
createPostgresBackplane({ pool: new pg.Pool({ max: 5 }), table: 'app.events', maxLen: 100, maxAgeMs: 60_000 });
createPostgresBackplane({ pool: postgres('postgres://localhost/app') });
createPostgresBackplane({
  pool: postgres({ backoff: (attempt) => Math.min(0.05 * 2 ** attempt, 1) }),
  commandTimeoutMs: 2000,
  onError: () => {},
});
createPostgresBackplane({ pool: postgres3('postgres://localhost/app') });
const asUnion: PostgresPool = postgres3();
createPostgresBackplane({ pool: asUnion });
void fromPg;

// @ts-expect-error a pool is required
createPostgresBackplane({});
// @ts-expect-error a single pg.Client is not a pool
createPostgresBackplane({ pool: new pg.Client() });
// @ts-expect-error a connection string is not a pool
createPostgresBackplane({ pool: 'postgres://localhost/app' });
// @ts-expect-error maxAgeMs is a number of milliseconds
createPostgresBackplane({ pool: new pg.Pool(), maxAgeMs: '1h' });

const error = new PostgresBackplaneError('x', { sent: false });
const code: 'ERR_SSE_BACKPLANE_UNAVAILABLE' = error.code;
const sent: boolean = error.sent;
void code;
void sent;
