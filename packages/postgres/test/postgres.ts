/**
 * Real PostgreSQL for the tests: the server at PG_URL, pools of every supported library, tables
 * of their own, and private servers that a test may stop and start again.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { accessSync, constants, readdirSync } from 'node:fs';
import { chown } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import vm from 'node:vm';
import pg from 'pg';
import type { Sql } from 'postgres';
import postgres3 from 'postgres3';
import { startPrivateServer, type PrivateServer } from '@ssekit/test-kit';
import type { PostgresPool } from '../src/index.js';

/** The PostgreSQL every test talks to, unless it starts its own. */
export const PG_URL = process.env.PG_URL || 'postgres://postgres@127.0.0.1:5432/test';

/** Every client library the backplane supports, at every major its peer range claims. */
export const FLAVOURS = ['pg', 'postgres.js 4', 'postgres.js 3'] as const;
export type Flavour = (typeof FLAVOURS)[number];

const HOW_TO_GET_POSTGRES =
  'Start one with `apt-get install -y postgresql && pg_ctlcluster 15 main start` and create the database ' +
  '(`createdb -U postgres test`, trust authentication on 127.0.0.1), or `docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust ' +
  '-e POSTGRES_DB=test postgres:16`, or point PG_URL at one. These tests never skip: without PostgreSQL they fail.';

/** Fails the suite, with how to get one, when no PostgreSQL answers at `url`. */
export async function requirePostgres(url = PG_URL): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (error) {
    throw new Error(
      `These tests need PostgreSQL at ${url} (PG_URL), and it did not answer: ${(error as Error).message}. ${HOW_TO_GET_POSTGRES}`,
      { cause: error },
    );
  } finally {
    await client.end().catch(() => {});
  }
}

type PostgresFactory = typeof postgres3;
let postgres4: PostgresFactory | undefined;

/**
 * postgres.js 4, which ships as ESM only. Jest runs the tests as CommonJS and leaves
 * node_modules untransformed, so on Node.js before 24.9 its `require` cannot load it: there the
 * real module is imported by Node's own loader, outside jest's registry.
 */
export async function loadPostgres4(): Promise<PostgresFactory> {
  if (postgres4) return postgres4;
  try {
    postgres4 = (await import('postgres')).default as unknown as PostgresFactory;
  } catch {
    const load = vm.runInThisContext('(specifier) => import(specifier)', {
      importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
    }) as (specifier: string) => Promise<{ default: PostgresFactory }>;
    postgres4 = (await load(pathToFileURL(require.resolve('postgres')).href)).default;
  }
  return postgres4;
}

/**
 * postgres.js's reconnect pace, as the README recommends it: by default it waits up to 20 s,
 * longer with every failed attempt (in version 3, of any connection of the `sql` instance), and
 * its listening connection comes back only then.
 */
export const POSTGRES_JS_BACKOFF = (attempt: number) => Math.min(0.05 * 2 ** attempt, 1);

/** A pool of `flavour`, and how to check the database with it and end it. */
export interface TestPool {
  readonly flavour: Flavour;
  readonly pool: PostgresPool;
  /** A statement on this pool, for set-up and checks. */
  query<T = Record<string, unknown>>(text: string, values?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

export async function connect(flavour: Flavour, url = PG_URL, applicationName = 'ssekit-test'): Promise<TestPool> {
  if (flavour === 'pg') {
    const pool = new pg.Pool({ connectionString: url, max: 5, application_name: applicationName, connectionTimeoutMillis: 3000 });
    pool.on('error', () => {}); // the tests stop PostgreSQL on purpose
    return {
      flavour,
      pool,
      query: async (text, values) => (await pool.query(text, values)).rows,
      close: () => pool.end(),
    };
  }
  const factory = flavour === 'postgres.js 4' ? await loadPostgres4() : postgres3;
  const sql = factory(url, {
    max: 5,
    onnotice: () => {},
    backoff: POSTGRES_JS_BACKOFF,
    connection: { application_name: applicationName },
  }) as unknown as Sql;
  return {
    flavour,
    pool: sql,
    query: async (text, values) => [...(await sql.unsafe(text, values as never[]))] as never[],
    close: () => sql.end({ timeout: 1 }),
  };
}

/** A table name no other test uses. */
export const uniqueTable = (label = 'test') => `ssekit_test_${label.replace(/\W/g, '_')}_${randomUUID().slice(0, 8)}`.slice(0, 50);

/** Drops the tables a backplane made under `table`. */
export async function dropTables(table: string, url = PG_URL): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query(`DROP TABLE IF EXISTS "${table}", "${table}_channels"`);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Connections to the server at `url` with `applicationName`, other than the asking one. */
export async function connectionsOf(applicationName: string, url = PG_URL): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ count: string }>(
      'SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()',
      [applicationName],
    );
    return Number(rows[0]!.count);
  } finally {
    await client.end();
  }
}

/** A PostgreSQL server of the test's own: stopped with `pg_ctl stop -m fast`, or `immediate`, as a crash would. */
export type PrivatePostgres = PrivateServer<'fast' | 'immediate'>;

/** `initdb` and `pg_ctl`: from PG_BIN, PATH, /usr/local/bin, or Debian's /usr/lib/postgresql/<n>/bin. */
function findBinary(name: string): string {
  const debian = (() => {
    try {
      return readdirSync('/usr/lib/postgresql')
        .sort((a, b) => Number(b) - Number(a))
        .map((version) => `/usr/lib/postgresql/${version}/bin`);
    } catch {
      return [];
    }
  })();
  const dirs = [process.env.PG_BIN, ...(process.env.PATH ?? '').split(path.delimiter), '/usr/local/bin', ...debian].filter(Boolean);
  for (const dir of dirs) {
    try {
      accessSync(path.join(dir!, name), constants.X_OK);
      return path.join(dir!, name);
    } catch {
      // Not here; try the next one.
    }
  }
  throw new Error(
    `${name} is not installed, and the outage tests need it to run a PostgreSQL of their own. Install the server ` +
      '(Debian/Ubuntu: `apt-get install -y postgresql`) or point PG_BIN at its bin directory.',
  );
}

/** Runs a PostgreSQL binary, as the `postgres` user when this process is root (initdb refuses root). */
function runAs(binary: string, args: string[], timeoutMs = 60_000): Promise<string> {
  const asRoot = process.getuid?.() === 0;
  const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', binary, ...args]] : [binary, args];
  return new Promise((resolve, reject) => {
    execFile(file, argv, { timeout: timeoutMs }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${path.basename(binary)} ${args.join(' ')} failed: ${error.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}

/**
 * Makes a cluster with `initdb` in a temporary directory and starts it on a free loopback port,
 * with trust authentication. The shared server at PG_URL is never stopped by a test.
 */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const initdb = findBinary('initdb');
  const pgCtl = findBinary('pg_ctl');
  return startPrivateServer('postgres', async (dir, port) => {
    if (process.getuid?.() === 0) await chown(dir, ...(await postgresUser()));
    const data = path.join(dir, 'data');
    await runAs(initdb, ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync']);
    const serverOptions = `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -c fsync=off -c max_connections=200`;
    let running = false;
    const stop = async (mode: 'fast' | 'immediate' = 'fast') => {
      if (!running) return;
      await runAs(pgCtl, ['-D', data, '-w', '-t', '30', '-m', mode, 'stop']);
      running = false;
    };
    return {
      url: `postgres://postgres@127.0.0.1:${port}/postgres`,
      start: async () => {
        await runAs(pgCtl, ['-D', data, '-w', '-t', '30', '-o', serverOptions, '-l', path.join(dir, 'log'), 'start']);
        running = true;
      },
      stop,
      halt: () => stop('immediate').catch(() => {}),
      kill: () => {
        if (running) void runAs(pgCtl, ['-D', data, '-m', 'immediate', 'stop']).catch(() => {});
      },
    };
  });
}

async function postgresUser(): Promise<[number, number]> {
  const out = await new Promise<string>((resolve, reject) =>
    execFile('id', ['postgres'], (error, stdout) =>
      error ? reject(new Error('there is no `postgres` user to run the server as')) : resolve(stdout),
    ),
  );
  const uid = /uid=(\d+)/.exec(out)?.[1];
  const gid = /gid=(\d+)/.exec(out)?.[1];
  return [Number(uid), Number(gid)];
}
