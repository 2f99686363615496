/**
 * Many app instances as separate processes, on different frameworks, sharing one Redis, once
 * per client flavour. Clients spread over the instances and reconnect to other ones with
 * Last-Event-ID while every publisher runs; an instance is killed with SIGKILL mid-stream; Redis
 * itself is stopped and started again. Every client must end with every event exactly once, in
 * order.
 */
import path from 'node:path';
import { createRedisBackplane } from '@ssekit/redis';
import { createChannel, type Backplane, type Channel } from '@ssekit/core';
import { Cluster, eventually, seeded, startInstance, type Framework, type Instance } from '@ssekit/test-kit';
import {
  connect,
  deleteKeys,
  FLAVOURS,
  REDIS_URL,
  requireRedis,
  startPrivateRedis,
  uniquePrefix,
  type PrivateRedis,
  type TestClient,
} from './redis.js';

const FIXTURE = path.join(__dirname, 'fixtures', 'instance.ts');

jest.setTimeout(90_000);
beforeAll(() => requireRedis());

/** Compares stream entry ids as Redis orders them. */
function byStreamOrder(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  return am !== bm ? (am < bm ? -1 : 1) : as === bs ? 0 : as < bs ? -1 : 1;
}

describe.each(FLAVOURS)('instances sharing one Redis, on %s', (flavour) => {
  let prefix: string;
  let redisUrl: string;
  let privateRedis: PrivateRedis | undefined;
  const cluster = new Cluster();
  const testClients: TestClient[] = [];
  const backplanes: Backplane[] = [];
  const channels: Channel<any>[] = [];

  const start = (frameworks: readonly Framework[]) =>
    cluster.add(
      frameworks.map((framework, index) =>
        startInstance({
          fixture: FIXTURE,
          name: `${framework}-${index}`,
          framework,
          detail: flavour,
          env: { FLAVOUR: flavour, REDIS_URL: redisUrl, PREFIX: prefix },
        }),
      ),
    );
  /** A channel in this process, publishing through a backplane of its own. */
  const publisher = async () => {
    const client = await connect(flavour, redisUrl);
    testClients.push(client);
    const reported: unknown[] = [];
    const backplane = createRedisBackplane({ client: client.client, prefix, onError: (error) => reported.push(error) });
    backplanes.push(backplane);
    const channel = createChannel<{ n: { from: string; n: number } }>({ backplane });
    channels.push(channel);
    return { client, channel, reported };
  };

  beforeEach(() => {
    prefix = uniquePrefix(`cluster-${flavour}`);
    redisUrl = REDIS_URL;
  });
  afterEach(async () => {
    await cluster.close();
    for (const channel of channels.splice(0)) await channel.close();
    for (const backplane of backplanes.splice(0)) await backplane.close();
    for (const client of testClients.splice(0)) await client.close();
    if (privateRedis) await privateRedis.close();
    else await deleteKeys(REDIS_URL, prefix);
    privateRedis = undefined;
  });

  test('4 instances on node, express, fastify and koa: every publisher runs while clients move between instances, and every client gets every event once, in order', async () => {
    const random = seeded(FLAVOURS.indexOf(flavour) + 11);
    const started = Date.now();
    const all = await start(['node', 'express', 'fastify', 'koa']);
    await cluster.spread(12, all, random);
    let publishing = true;
    const [results, moves] = await Promise.all([
      // Every instance publishes at once: 4 x 100 events.
      Promise.all(all.map((instance) => instance.publish(100, 10))).finally(() => (publishing = false)),
      cluster.churn(random, () => !publishing),
    ]);
    expect(results.flatMap((result) => result.failures)).toEqual([]);
    const expected = results.flatMap((result) => result.ids).sort(byStreamOrder);
    expect(new Set(expected).size).toBe(400);
    const counts = await cluster.everyClientGets(expected, 20_000);
    expect(moves).toBeGreaterThan(10);
    console.info(
      `[${flavour}] ${all.length} instances (${all.map((instance) => instance.framework).join(', ')}), ${cluster.clients.length} clients, ` +
        `${expected.length} events from ${all.length} publishers, ${cluster.reconnects()} reconnects to other instances: ` +
        `lost ${counts.lost}, duplicated ${counts.duplicated}, resets ${cluster.resets()} (${Date.now() - started} ms)`,
    );
  });

  test('an instance killed with SIGKILL mid-stream: its clients reconnect to a survivor and lose nothing', async () => {
    const random = seeded(FLAVOURS.indexOf(flavour) + 21);
    const all = await start(['express', 'fastify', 'koa']);
    const [victim] = all as [Instance, ...Instance[]];
    await cluster.spread(9, all, random);
    const onVictim = cluster.clients.filter((client) => client.instance === victim);
    expect(onVictim.length).toBeGreaterThan(0);
    const { channel } = await publisher();
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
    const expected = [...ids, ...results.flatMap((result) => result.ids)].sort(byStreamOrder);
    const counts = await cluster.everyClientGets(expected, 20_000);
    for (const client of onVictim) {
      expect(client.instance).not.toBe(victim);
      expect(client.connects).toBeGreaterThanOrEqual(2);
    }
    console.info(
      `[${flavour}] SIGKILL of ${victim.framework} after ${killedAt} of ${ids.length} events; ${onVictim.length} of its clients moved to survivors; ` +
        `${expected.length} events: lost ${counts.lost}, duplicated ${counts.duplicated}`,
    );
  });

  test('Redis stopped and started again mid-stream: a publish while it is down rejects, and delivery resumes with nothing lost', async () => {
    const random = seeded(FLAVOURS.indexOf(flavour) + 31);
    privateRedis = await startPrivateRedis();
    redisUrl = privateRedis.url;
    const all = await start(['node', 'fastify', 'koa']);
    await cluster.spread(6, all, random);
    const { client, channel, reported } = await publisher();
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

    // Redis goes away (SIGKILL: with appendfsync always, every acknowledged entry is on disk).
    await privateRedis.stop('SIGKILL');
    await eventually(() => !client.ready(), 5000, 'the publisher’s client to notice');
    const before = Date.now();
    const failure = await channel.publish({ event: 'n', data: { from: 'test', n: -1 } }).then(
      (id) => new Error(`published ${id} while Redis was down`),
      (error: unknown) => error,
    );
    expect(Date.now() - before).toBeLessThan(1000);
    expect(failure).toMatchObject({ name: 'RedisBackplaneError', code: 'ERR_SSE_BACKPLANE_UNAVAILABLE', sent: false });
    await new Promise((resolve) => setTimeout(resolve, 300)); // clients keep moving while Redis is down

    await privateRedis.start();
    await eventually(() => client.ready(), 10_000, 'the publisher’s client to reconnect');
    await publish(60);
    publishing = false;
    await moving;
    const counts = await cluster.everyClientGets(ids, 30_000);
    // The publisher's own reader lost Redis too: it said so once, and went on.
    expect(reported).toEqual([
      expect.objectContaining({ name: 'RedisBackplaneError', message: expect.stringContaining('keeps retrying from the last id') }),
    ]);
    console.info(
      `[${flavour}] Redis restarted after 60 of ${ids.length} events; the publish while down rejected: lost ${counts.lost}, duplicated ${counts.duplicated}`,
    );
  });
});
