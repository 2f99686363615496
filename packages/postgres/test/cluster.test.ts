/**
 * Three app instances as separate processes, on Express, Fastify and Koa, each on another
 * client library (node-postgres, postgres.js 4, postgres.js 3), sharing one table. Clients
 * spread over the instances and move to other ones with Last-Event-ID while every instance
 * publishes; an instance is killed with SIGKILL mid-stream; PostgreSQL itself is stopped and
 * started again. Every client must end with every event exactly once, in order.
 */
import { createChannel, type Backplane, type Channel } from '@ssekit/core';
import { Cluster, eventually, seeded, type Framework } from '@ssekit/test-kit';
import { createPostgresBackplane } from '../src/index.js';
import { byId, startInstance, type Instance } from './instances.js';
import {
  connect,
  dropTables,
  PG_URL,
  requirePostgres,
  startPrivatePostgres,
  uniqueTable,
  type Flavour,
  type PrivatePostgres,
  type TestPool,
} from './postgres.js';

jest.setTimeout(120_000);
beforeAll(() => requirePostgres());

/** Each framework on another client library. */
const INSTANCES: ReadonlyArray<readonly [Framework, Flavour]> = [
  ['express', 'pg'],
  ['fastify', 'postgres.js 4'],
  ['koa', 'postgres.js 3'],
];

describe('instances sharing one PostgreSQL', () => {
  let table: string;
  let url: string;
  let server: PrivatePostgres | undefined;
  const cluster = new Cluster<Instance>();
  const pools: TestPool[] = [];
  const backplanes: Backplane[] = [];
  const channels: Channel<any>[] = [];

  const start = () =>
    cluster.add(INSTANCES.map(([framework, flavour], n) => startInstance(`${framework}-${n}`, framework, flavour, url, table)));
  /** A channel in this process, publishing through a backplane of its own. */
  const publisher = async (flavour: Flavour = 'pg') => {
    const pool = await connect(flavour, url);
    pools.push(pool);
    const reported: unknown[] = [];
    const backplane = createPostgresBackplane({ pool: pool.pool, table, onError: (error) => reported.push(error) });
    backplanes.push(backplane);
    const channel = createChannel<{ n: { from: string; n: number } }>({ backplane });
    channels.push(channel);
    return { channel, reported };
  };

  beforeEach(() => {
    table = uniqueTable('cluster');
    url = PG_URL;
  });
  afterEach(async () => {
    await cluster.close();
    for (const channel of channels.splice(0)) await channel.close();
    for (const backplane of backplanes.splice(0)) await backplane.close();
    for (const pool of pools.splice(0)) await pool.close();
    if (server) await server.close();
    else await dropTables(table);
    server = undefined;
  });

  test('Express, Fastify and Koa: every instance publishes while clients move between them, and every client gets every event once, in order', async () => {
    const random = seeded(11);
    const started = Date.now();
    const all = await start();
    await cluster.spread(12, all, random);
    let publishing = true;
    const [results, moves] = await Promise.all([
      Promise.all(all.map((instance) => instance.publish(100, 10, 2))).finally(() => (publishing = false)),
      cluster.churn(random, () => !publishing),
    ]);
    expect(results.flatMap((result) => result.failures)).toEqual([]);
    const expected = results.flatMap((result) => result.ids).sort(byId);
    expect(expected).toEqual(Array.from({ length: 300 }, (_, n) => String(n + 1)));
    const counts = await cluster.everyClientGets(expected, 20_000);
    expect(moves).toBeGreaterThan(10);
    console.info(
      `${all.length} instances (${all.map((instance) => `${instance.framework} on ${instance.flavour}`).join(', ')}), ${cluster.clients.length} clients, ` +
        `${expected.length} events from ${all.length} racing publishers, ${cluster.reconnects()} reconnects to other instances: ` +
        `lost ${counts.lost}, duplicated ${counts.duplicated}, resets ${cluster.resets()} (${Date.now() - started} ms)`,
    );
  });

  test('an instance killed with SIGKILL mid-stream: its clients reconnect to a survivor and lose nothing', async () => {
    const random = seeded(21);
    const all = await start();
    const [victim] = all as [Instance, ...Instance[]];
    await cluster.spread(9, all, random);
    const onVictim = cluster.clients.filter((client) => client.instance === victim);
    expect(onVictim.length).toBeGreaterThan(0);
    const { channel } = await publisher('postgres.js 4');
    const survivorsPublish = all.slice(1).map((instance) => instance.publish(60, 6));
    const ids: string[] = [];
    let killedAt = -1;
    for (let n = 1; n <= 150; n++) {
      ids.push(await channel.publish({ event: 'n', data: { from: 'test', n } }));
      if (n === 50) {
        await eventually(() => onVictim.every((client) => client.ids().length > 0), 5000, 'the victim’s clients to receive events');
        await victim.kill();
        killedAt = ids.length;
      }
      await new Promise((resolve) => setTimeout(resolve, random() * 4));
    }
    const results = await Promise.all(survivorsPublish);
    expect(results.flatMap((result) => result.failures)).toEqual([]);
    const expected = [...ids, ...results.flatMap((result) => result.ids)].sort(byId);
    const counts = await cluster.everyClientGets(expected, 20_000);
    for (const client of onVictim) {
      expect(client.instance).not.toBe(victim);
      expect(client.connects).toBeGreaterThanOrEqual(2);
    }
    console.info(
      `SIGKILL of ${victim.framework} (${victim.flavour}) after ${killedAt} of ${ids.length} events; ${onVictim.length} of its clients moved ` +
        `to survivors; ${expected.length} events: lost ${counts.lost}, duplicated ${counts.duplicated}`,
    );
  });

  test('PostgreSQL stopped and started again mid-stream: a publish while it is down rejects at once, and delivery resumes with nothing lost', async () => {
    const random = seeded(31);
    server = await startPrivatePostgres();
    url = server.url;
    const all = await start();
    await cluster.spread(6, all, random);
    const { channel, reported } = await publisher('pg');
    const ids: string[] = [];
    let publishing = true;
    const publish = async (count: number) => {
      for (let i = 0; i < count; i++) {
        ids.push(await channel.publish({ event: 'n', data: { from: 'test', n: ids.length + 1 } }));
        await new Promise((resolve) => setTimeout(resolve, random() * 4));
      }
    };
    const moving = cluster.churn(random, () => !publishing);
    await publish(60);

    await server.stop();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const before = Date.now();
    const failure = await channel.publish({ event: 'n', data: { from: 'test', n: -1 } }).then(
      (id) => new Error(`published ${id} while PostgreSQL was down`),
      (error: unknown) => error,
    );
    expect(Date.now() - before).toBeLessThan(1000);
    expect(failure).toMatchObject({ name: 'PostgresBackplaneError', code: 'ERR_SSE_BACKPLANE_UNAVAILABLE', sent: false });
    await new Promise((resolve) => setTimeout(resolve, 1000)); // clients keep moving while it is down

    await server.start();
    const back = Date.now();
    for (let attempt = 0; ; attempt++) {
      try {
        ids.push(await channel.publish({ event: 'n', data: { from: 'test', n: ids.length + 1 } }));
        break;
      } catch (error) {
        if (Date.now() - back > 5000) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    await publish(59);
    publishing = false;
    await moving;
    await cluster.everyClientGets(ids, 30_000);
    // The publisher's own backplane lost PostgreSQL too: it said so once, and went on.
    expect(reported).toEqual([
      expect.objectContaining({ name: 'PostgresBackplaneError', message: expect.stringContaining('keeps retrying') }),
    ]);
    console.info(`PostgreSQL restarted after 60 of ${ids.length} events; the publish while it was down rejected; nothing lost or repeated`);
  });
});
