export { createPostgresBackplane, type PostgresBackplaneOptions } from './backplane.js';
export { PostgresBackplaneError } from './error.js';
export type { PgPool, PgPoolClient, PostgresJsQuery, PostgresJsSql, PostgresJsTransaction, PostgresPool } from './client.js';
