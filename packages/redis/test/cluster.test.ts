/**
 * Many app instances as separate processes, on different frameworks, sharing one Redis, once
 * per client flavour. Clients spread over the instances and reconnect to other ones with
 * Last-Event-ID while every publisher runs; an instance is killed with SIGKILL mid-stream; Redis
 * itself is stopped and started again. Every client must end with every event exactly once, in
 * order.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createRedisBackplane } from '@ssekit/redis';
import { createChannel, type Backplane, type Channel } from '@ssekit/core';
import { eventually, readSse, type Framework, type SseReader } from '@ssekit/test-kit';
import type { InstanceReply, InstanceRequest } from './fixtures/instance.js';
import {
  connect,
  deleteKeys,
  FLAVOURS,
  REDIS_URL,
  requireRedis,
  startPrivateRedis,
  uniquePrefix,
  type Flavour,
  type PrivateRedis,
  type TestClient,
} from './redis.js';

const PACKAGE_ROOT = path.resolve(__dirname, '..');
const FIXTURE = path.join(__dirname, 'fixtures', 'instance.ts');

jest.setTimeout(90_000);
beforeAll(() => requireRedis());

/** A small deterministic generator, so that a failing run can be replayed exactly. */
function seeded(seed: number) {
  return () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
}

/** Compares stream entry ids as Redis orders them. */
function byStreamOrder(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  return am !== bm ? (am < bm ? -1 : 1) : as === bs ? 0 : as < bs ? -1 : 1;
}

/** One app instance in a process of its own. */
interface Instance {
  readonly name: string;
  readonly framework: Framework;
  readonly url: string;
  readonly child: ChildProcess;
  alive: boolean;
  /** What the process wrote to stderr (backplane and channel errors). */
  output(): string;
  /** Has the instance publish `count` events, pausing up to `maxPauseMs` between them. */
  publish(count: number, maxPauseMs?: number): Promise<{ ids: string[]; failures: string[] }>;
  kill(): Promise<void>;
  close(): Promise<void>;
}

async function startInstance(name: string, framework: Framework, flavour: Flavour, prefix: string, redisUrl: string): Promise<Instance> {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
    cwd: PACKAGE_ROOT,
    env: { ...process.env, FRAMEWORK: framework, FLAVOUR: flavour, REDIS_URL: redisUrl, PREFIX: prefix, NAME: name },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output = (output + chunk).slice(-20_000)));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output = (output + chunk).slice(-20_000)));
  const replies: InstanceReply[] = [];
  const waiters = new Set<() => void>();
  child.on('message', (reply: InstanceReply) => {
    replies.push(reply);
    for (const waiter of waiters) waiter();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const next = <T extends InstanceReply['type']>(type: T, timeoutMs: number) =>
    new Promise<Extract<InstanceReply, { type: T }>>((resolve, reject) => {
      const check = () => {
        const at = replies.findIndex((reply) => reply.type === type);
        if (at < 0) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve(replies.splice(at, 1)[0] as Extract<InstanceReply, { type: T }>);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`instance ${name} (${framework}) sent no ${type} within ${timeoutMs} ms:\n${output}`));
      }, timeoutMs);
      waiters.add(check);
      void exited.then(() => {
        if (!waiters.has(check)) return;
        clearTimeout(timer);
        waiters.delete(check);
        reject(new Error(`instance ${name} (${framework}) exited before it sent ${type}:\n${output}`));
      });
      check();
    });
  const request = (message: InstanceRequest) => child.send(message);
  const { url } = await next('ready', 30_000);
  const instance: Instance = {
    name,
    framework,
    url,
    child,
    alive: true,
    output: () => output,
    publish: async (count, maxPauseMs = 3) => {
      request({ type: 'publish', count, maxPauseMs });
      return next('published', 60_000);
    },
    kill: async () => {
      instance.alive = false;
      child.kill('SIGKILL');
      await exited;
    },
    close: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      instance.alive = false;
      request({ type: 'close' });
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 5000)))]);
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
  return instance;
}

/**
 * An SSE client that follows the ids it received. It reconnects by itself when its instance
 * drops it, as EventSource does, and the test moves it to another instance at random moments.
 */
class Client {
  /** Ids received over earlier connections. */
  private earlier: string[] = [];
  reader: SseReader | undefined;
  instance!: Instance;
  connects = 0;
  resets = 0;
  private moving = false;
  private stopped = false;

  constructor(
    private readonly pick: (not?: Instance) => Instance,
    private readonly random: () => number,
  ) {}

  /** Every id received, in order, over every connection. */
  ids(): string[] {
    return this.earlier.concat(this.reader?.events.map((event) => event.id!) ?? []);
  }

  async connect(to: Instance): Promise<void> {
    const lastEventId = this.ids().at(-1);
    if (this.reader) {
      this.earlier = this.ids();
      this.resets += this.reader.events.filter((event) => event.event === 'reset').length;
      this.reader.close();
    }
    this.instance = to;
    this.reader = undefined;
    const reader = await readSse(`${to.url}/events`, { headers: lastEventId ? { 'last-event-id': lastEventId } : {} });
    this.reader = reader;
    this.connects++;
    // Dropped by the server (a crash, a replay that failed while Redis was down): come back.
    void reader.ended.then(() => this.reconnectAfterDrop(reader));
  }

  /** Moves to another instance with its Last-Event-ID. */
  async move(): Promise<void> {
    if (this.moving || this.stopped) return;
    this.moving = true;
    try {
      await this.connect(this.pick(this.instance));
    } finally {
      this.moving = false;
    }
  }

  private async reconnectAfterDrop(dropped: SseReader): Promise<void> {
    for (let attempt = 0; attempt < 300 && !this.stopped && this.reader === dropped && !this.moving; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 20 + this.random() * 50));
      if (this.stopped || this.reader !== dropped || this.moving) return;
      this.moving = true;
      try {
        await this.connect(this.pick(this.instance.alive ? undefined : this.instance));
        return;
      } catch {
        // The instance is gone or not listening: try another.
      } finally {
        this.moving = false;
      }
    }
  }

  describe(expected: string[]): string {
    const seen = new Set(this.ids());
    const missing = expected.flatMap((id, index) => (seen.has(id) ? [] : [index]));
    return (
      `${this.ids().length} on ${this.instance.name} after ${this.connects} connects (${this.reader ? this.reader.events.length : 'no'} events on this one${this.moving ? ', moving' : ''}` +
      `${missing.length > 0 ? `, missing #${missing.join(', #')}` : ''})`
    );
  }

  stop(): void {
    this.stopped = true;
    this.reader?.close();
  }
}

/** Checks that every client got exactly `expected`, and returns the loss and duplicate counts. */
function tally(clients: Client[], expected: string[]) {
  const expectedSet = new Set(expected);
  let lost = 0;
  let duplicated = 0;
  let foreign = 0;
  for (const client of clients) {
    const seen = client.ids();
    const seenSet = new Set(seen);
    lost += expected.filter((id) => !seenSet.has(id)).length;
    duplicated += seen.length - seenSet.size;
    foreign += seen.filter((id) => !expectedSet.has(id)).length;
  }
  return { lost, duplicated, foreign };
}

describe.each(FLAVOURS)('instances sharing one Redis, on %s', (flavour) => {
  let prefix: string;
  let redisUrl: string;
  let privateRedis: PrivateRedis | undefined;
  const instances: Instance[] = [];
  const clients: Client[] = [];
  const testClients: TestClient[] = [];
  const backplanes: Backplane[] = [];
  const channels: Channel<any>[] = [];

  const start = (frameworks: readonly Framework[]) =>
    Promise.all(frameworks.map((framework, index) => startInstance(`${framework}-${index}`, framework, flavour, prefix, redisUrl))).then(
      (started) => {
        instances.push(...started);
        return started;
      },
    );
  /** Clients spread round-robin over `over`, each subscribed before anything is published. */
  const spread = async (count: number, over: Instance[], random: () => number) => {
    const pick = (not?: Instance) => {
      const candidates = over.filter((instance) => instance.alive && instance !== not);
      return candidates[Math.floor(random() * candidates.length)]!;
    };
    const made = Array.from({ length: count }, () => new Client(pick, random));
    clients.push(...made);
    await Promise.all(made.map((client, index) => client.connect(over[index % over.length]!)));
    return made;
  };
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
  /** Moves a random client that has received something to another instance, until `until()`. */
  const churn = async (random: () => number, until: () => boolean) => {
    let moves = 0;
    while (!until()) {
      await new Promise((resolve) => setTimeout(resolve, 5 + random() * 15));
      const candidates = clients.filter((client) => client.ids().length > 0);
      if (candidates.length === 0) continue;
      await candidates[Math.floor(random() * candidates.length)]!.move();
      moves++;
    }
    return moves;
  };

  beforeEach(() => {
    prefix = uniquePrefix(`cluster-${flavour}`);
    redisUrl = REDIS_URL;
  });
  afterEach(async () => {
    for (const client of clients.splice(0)) client.stop();
    for (const channel of channels.splice(0)) await channel.close();
    for (const backplane of backplanes.splice(0)) await backplane.close();
    for (const client of testClients.splice(0)) await client.close();
    await Promise.all(instances.splice(0).map((instance) => instance.close()));
    if (privateRedis) await privateRedis.close();
    else await deleteKeys(REDIS_URL, prefix);
    privateRedis = undefined;
  });

  test('4 instances on node, express, fastify and koa: every publisher runs while clients move between instances, and every client gets every event once, in order', async () => {
    const random = seeded(FLAVOURS.indexOf(flavour) + 11);
    const started = Date.now();
    const all = await start(['node', 'express', 'fastify', 'koa']);
    await spread(12, all, random);
    let publishing = true;
    const [results, moves] = await Promise.all([
      // Every instance publishes at once: 4 x 100 events.
      Promise.all(all.map((instance) => instance.publish(100, 10))).finally(() => (publishing = false)),
      churn(random, () => !publishing),
    ]);
    expect(results.flatMap((result) => result.failures)).toEqual([]);
    const expected = results.flatMap((result) => result.ids).sort(byStreamOrder);
    expect(new Set(expected).size).toBe(400);
    await eventually(() => clients.every((client) => client.ids().length >= expected.length), 20_000, 'every client to catch up').catch(
      (error) => {
        throw new Error(
          `${(error as Error).message}; got ${clients.map((client) => client.describe(expected)).join(', ')} of ${expected.length}\n${all.map((i) => i.output()).join('\n')}`,
        );
      },
    );
    const counts = tally(clients, expected);
    for (const client of clients) expect(client.ids()).toEqual(expected);
    expect(counts).toEqual({ lost: 0, duplicated: 0, foreign: 0 });
    expect(moves).toBeGreaterThan(10);
    const reconnects = clients.reduce((sum, client) => sum + client.connects - 1, 0);
    console.info(
      `[${flavour}] ${all.length} instances (${all.map((instance) => instance.framework).join(', ')}), ${clients.length} clients, ` +
        `${expected.length} events from ${all.length} publishers, ${reconnects} reconnects to other instances: ` +
        `lost ${counts.lost}, duplicated ${counts.duplicated}, resets ${clients.reduce((sum, client) => sum + client.resets, 0)} (${Date.now() - started} ms)`,
    );
  });

  test('an instance killed with SIGKILL mid-stream: its clients reconnect to a survivor and lose nothing', async () => {
    const random = seeded(FLAVOURS.indexOf(flavour) + 21);
    const all = await start(['express', 'fastify', 'koa']);
    const [victim] = all as [Instance, ...Instance[]];
    await spread(9, all, random);
    const onVictim = clients.filter((client) => client.instance === victim);
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
    await eventually(() => clients.every((client) => client.ids().length >= expected.length), 20_000, 'every client to catch up').catch(
      (error) => {
        throw new Error(
          `${(error as Error).message}; got ${clients.map((client) => client.describe(expected)).join(', ')} of ${expected.length}`,
        );
      },
    );
    for (const client of onVictim) {
      expect(client.instance).not.toBe(victim);
      expect(client.connects).toBeGreaterThanOrEqual(2);
    }
    const counts = tally(clients, expected);
    for (const client of clients) expect(client.ids()).toEqual(expected);
    expect(counts).toEqual({ lost: 0, duplicated: 0, foreign: 0 });
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
    await spread(6, all, random);
    const { client, channel, reported } = await publisher();
    const ids: string[] = [];
    let publishing = true;
    const publish = async (count: number) => {
      for (let i = 0; i < count; i++) {
        ids.push(await channel.publish({ event: 'n', data: { from: 'test', n: ids.length + 1 } }));
        await new Promise((resolve) => setTimeout(resolve, random() * 4));
      }
    };
    const moving = churn(random, () => !publishing);
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
    await eventually(() => clients.every((reader) => reader.ids().length >= ids.length), 30_000, 'every client to catch up').catch(
      (error) => {
        throw new Error(
          `${(error as Error).message}; got ${clients.map((reader) => reader.describe(ids)).join(', ')} of ${ids.length}\n${all.map((i) => i.output()).join('\n')}`,
        );
      },
    );
    // The publisher's own reader lost Redis too: it said so once, and went on.
    expect(reported).toEqual([
      expect.objectContaining({ name: 'RedisBackplaneError', message: expect.stringContaining('keeps retrying from the last id') }),
    ]);
    const counts = tally(clients, ids);
    for (const reader of clients) expect(reader.ids()).toEqual(ids);
    expect(counts).toEqual({ lost: 0, duplicated: 0, foreign: 0 });
    console.info(
      `[${flavour}] Redis restarted after 60 of ${ids.length} events; the publish while down rejected: lost ${counts.lost}, duplicated ${counts.duplicated}`,
    );
  });
});
