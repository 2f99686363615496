/**
 * App instances as separate processes, on Express, Fastify and Koa, sharing one NATS stream.
 * Clients spread over the instances and reconnect to other ones with Last-Event-ID while every
 * publisher runs; an instance is killed with SIGKILL mid-stream; nats-server itself is stopped
 * and started again. Every client must end with every event exactly once, in order.
 */
import path from 'node:path';
import type { NatsConnection } from '@nats-io/nats-core';
import { createChannel, type Backplane, type Channel } from '@ssekit/core';
import { Cluster, eventually, seeded, startInstance, type Framework, type Instance } from '@ssekit/test-kit';
import { createNatsBackplane } from '../src/index.js';
import {
  connectNats,
  deleteStream,
  disconnected,
  NATS_URL,
  requireNats,
  startPrivateNats,
  uniqueStream,
  type PrivateNats,
} from './nats.js';

const FIXTURE = path.join(__dirname, 'fixtures', 'instance.ts');
const FRAMEWORKS = ['express', 'fastify', 'koa'] as const satisfies readonly Framework[];

jest.setTimeout(90_000);
beforeAll(() => requireNats());

/** Stream sequences in their order. */
const bySequence = (a: string, b: string) => Number(a) - Number(b);

describe('instances sharing one NATS stream', () => {
  let stream: string;
  let natsUrl: string;
  let privateNats: PrivateNats | undefined;
  const cluster = new Cluster();
  const connections: NatsConnection[] = [];
  const backplanes: Backplane[] = [];
  const channels: Channel<any>[] = [];

  const start = (frameworks: readonly Framework[]) =>
    cluster.add(
      frameworks.map((framework, index) =>
        startInstance({ fixture: FIXTURE, name: `${framework}-${index}`, framework, env: { NATS_URL: natsUrl, STREAM: stream } }),
      ),
    );
  /** A channel in this process, publishing through a backplane of its own. */
  const publisher = async () => {
    const connection = await connectNats(natsUrl);
    connections.push(connection);
    const reported: unknown[] = [];
    const backplane = createNatsBackplane({ connection, stream, onError: (error) => reported.push(error) });
    backplanes.push(backplane);
    const channel = createChannel<{ n: { from: string; n: number } }>({ backplane });
    channels.push(channel);
    return { connection, channel, reported };
  };

  beforeEach(() => {
    stream = uniqueStream('cluster');
    natsUrl = NATS_URL;
  });
  afterEach(async () => {
    await cluster.close();
    for (const channel of channels.splice(0)) await channel.close();
    for (const backplane of backplanes.splice(0)) await backplane.close();
    for (const connection of connections.splice(0)) await connection.close();
    if (privateNats) await privateNats.close();
    else await deleteStream(NATS_URL, stream);
    privateNats = undefined;
  });

  test('3 instances on express, fastify and koa: every publisher runs while clients move between instances, and every client gets every event once, in order', async () => {
    const random = seeded(11);
    const started = Date.now();
    const all = await start(FRAMEWORKS);
    await cluster.spread(12, all, random);
    const { channel } = await publisher();
    let publishing = true;
    const fromTest = async () => {
      const ids: string[] = [];
      for (let n = 1; n <= 100; n++) {
        ids.push(await channel.publish({ event: 'n', data: { from: 'test', n } }));
        await new Promise((resolve) => setTimeout(resolve, random() * 10));
      }
      return { ids, failures: [] as string[] };
    };
    // Every instance and the test publish at once, to the one channel: 4 x 100 events.
    const [results, moves] = await Promise.all([
      Promise.all([...all.map((instance) => instance.publish(100, 10)), fromTest()]).finally(() => (publishing = false)),
      cluster.churn(random, () => !publishing),
    ]);
    expect(results.flatMap((result) => result.failures)).toEqual([]);
    const expected = results.flatMap((result) => result.ids).sort(bySequence);
    expect(new Set(expected).size).toBe(400);
    const counts = await cluster.everyClientGets(expected, 20_000);
    expect(moves).toBeGreaterThan(10);
    console.info(
      `[nats] ${all.length} instances (${all.map((instance) => instance.framework).join(', ')}), ${cluster.clients.length} clients, ` +
        `${expected.length} events from ${all.length + 1} publishers, ${cluster.reconnects()} reconnects to other instances: ` +
        `lost ${counts.lost}, duplicated ${counts.duplicated}, resets ${cluster.resets()} (${Date.now() - started} ms)`,
    );
  });

  test('an instance killed with SIGKILL mid-stream: its clients reconnect to a survivor and lose nothing', async () => {
    const random = seeded(21);
    const all = await start(FRAMEWORKS);
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
    const expected = [...ids, ...results.flatMap((result) => result.ids)].sort(bySequence);
    const counts = await cluster.everyClientGets(expected, 20_000);
    for (const client of onVictim) {
      expect(client.instance).not.toBe(victim);
      expect(client.connects).toBeGreaterThanOrEqual(2);
    }
    console.info(
      `[nats] SIGKILL of ${victim.framework} after ${killedAt} of ${ids.length} events; ${onVictim.length} of its clients moved to survivors; ` +
        `${expected.length} events: lost ${counts.lost}, duplicated ${counts.duplicated}`,
    );
  });

  test('nats-server stopped and started again mid-stream: a publish while it is down rejects at once, and delivery resumes with nothing lost', async () => {
    const random = seeded(31);
    privateNats = await startPrivateNats();
    natsUrl = privateNats.url;
    const all = await start(FRAMEWORKS);
    await cluster.spread(6, all, random);
    const { connection, channel, reported } = await publisher();
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

    // NATS goes away (SIGKILL: JetStream's file store keeps every acknowledged message).
    const noticed = disconnected(connection);
    await privateNats.stop('SIGKILL');
    await noticed;
    const before = performance.now();
    const failure = await channel.publish({ event: 'n', data: { from: 'test', n: -1 } }).then(
      (id) => new Error(`published ${id} while NATS was down`),
      (error: unknown) => error,
    );
    expect(performance.now() - before).toBeLessThan(1000);
    expect(failure).toMatchObject({ name: 'NatsBackplaneError', code: 'ERR_SSE_BACKPLANE_UNAVAILABLE', sent: false });
    await new Promise((resolve) => setTimeout(resolve, 300)); // clients keep moving while NATS is down

    await privateNats.start();
    const back = performance.now();
    // The first publish that NATS takes after its return; the instances must deliver it within 5 s.
    for (let attempt = 0; ; attempt++) {
      try {
        ids.push(await channel.publish({ event: 'n', data: { from: 'test', n: ids.length + 1 } }));
        break;
      } catch (error) {
        if (attempt >= 100) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    const firstAfter = ids.at(-1)!;
    await cluster.everyClient(
      (client) => client.ids().includes(firstAfter),
      10_000,
      'the first event after the restart on every client',
      ids,
    );
    const resumedMs = performance.now() - back;
    await publish(59);
    publishing = false;
    await moving;
    const counts = await cluster.everyClientGets(ids, 30_000);
    // The publisher's backplane said once that it lost NATS, and went on.
    expect(reported).toEqual([
      expect.objectContaining({ name: 'NatsBackplaneError', message: expect.stringContaining('connection dropped') }),
    ]);
    console.info(
      `[nats] nats-server restarted after 60 of ${ids.length} events; the publish while down rejected; delivery to every client resumed ` +
        `${Math.round(resumedMs)} ms after the restart: lost ${counts.lost}, duplicated ${counts.duplicated}`,
    );
  });
});
