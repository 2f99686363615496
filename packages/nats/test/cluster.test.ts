/**
 * App instances as separate processes, on Express, Fastify and Koa, sharing one NATS stream.
 * Clients spread over the instances and reconnect to other ones with Last-Event-ID while every
 * publisher runs; an instance is killed with SIGKILL mid-stream; nats-server itself is stopped
 * and started again. Every client must end with every event exactly once, in order.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { NatsConnection } from '@nats-io/nats-core';
import { createChannel, type Backplane, type Channel } from '@ssekit/core';
import { eventually, readSse, type Framework, type SseReader } from '@ssekit/test-kit';
import { createNatsBackplane } from '../src/index.js';
import type { InstanceReply, InstanceRequest } from './fixtures/instance.js';
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

const PACKAGE_ROOT = path.resolve(__dirname, '..');
const FIXTURE = path.join(__dirname, 'fixtures', 'instance.ts');
const FRAMEWORKS = ['express', 'fastify', 'koa'] as const satisfies readonly Framework[];

jest.setTimeout(90_000);
beforeAll(() => requireNats());

/** A small deterministic generator, so that a failing run can be replayed exactly. */
function seeded(seed: number) {
  return () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
}

/** Stream sequences in their order. */
const bySequence = (a: string, b: string) => Number(a) - Number(b);

/** One app instance in a process of its own. */
interface Instance {
  readonly name: string;
  readonly framework: Framework;
  readonly url: string;
  alive: boolean;
  /** What the process wrote (backplane and channel errors). */
  output(): string;
  /** Has the instance publish `count` events, pausing up to `maxPauseMs` between them. */
  publish(count: number, maxPauseMs?: number): Promise<{ ids: string[]; failures: string[] }>;
  kill(): Promise<void>;
  close(): Promise<void>;
}

async function startInstance(name: string, framework: Framework, natsUrl: string, stream: string): Promise<Instance> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
    cwd: PACKAGE_ROOT,
    env: { ...process.env, FRAMEWORK: framework, NATS_URL: natsUrl, STREAM: stream, NAME: name },
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
    // Dropped by the server (a crash, a replay that failed while NATS was down): come back.
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

/** Counts what the clients lost, got twice, or got that nobody published. */
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

describe('instances sharing one NATS stream', () => {
  let stream: string;
  let natsUrl: string;
  let privateNats: PrivateNats | undefined;
  const instances: Instance[] = [];
  const clients: Client[] = [];
  const connections: NatsConnection[] = [];
  const backplanes: Backplane[] = [];
  const channels: Channel<any>[] = [];

  const start = (frameworks: readonly Framework[]) =>
    Promise.all(frameworks.map((framework, index) => startInstance(`${framework}-${index}`, framework, natsUrl, stream))).then(
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
    const connection = await connectNats(natsUrl);
    connections.push(connection);
    const reported: unknown[] = [];
    const backplane = createNatsBackplane({ connection, stream, onError: (error) => reported.push(error) });
    backplanes.push(backplane);
    const channel = createChannel<{ n: { from: string; n: number } }>({ backplane });
    channels.push(channel);
    return { connection, channel, reported };
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
  const caughtUp = (expected: string[], timeoutMs: number) =>
    eventually(() => clients.every((client) => client.ids().length >= expected.length), timeoutMs, 'every client to catch up').catch(
      (error) => {
        throw new Error(
          `${(error as Error).message}; got ${clients.map((client) => client.describe(expected)).join(', ')} of ${expected.length}\n${instances.map((i) => i.output()).join('\n')}`,
        );
      },
    );

  beforeEach(() => {
    stream = uniqueStream('cluster');
    natsUrl = NATS_URL;
  });
  afterEach(async () => {
    for (const client of clients.splice(0)) client.stop();
    for (const channel of channels.splice(0)) await channel.close();
    for (const backplane of backplanes.splice(0)) await backplane.close();
    for (const connection of connections.splice(0)) await connection.close();
    await Promise.all(instances.splice(0).map((instance) => instance.close()));
    if (privateNats) await privateNats.close();
    else await deleteStream(NATS_URL, stream);
    privateNats = undefined;
  });

  test('3 instances on express, fastify and koa: every publisher runs while clients move between instances, and every client gets every event once, in order', async () => {
    const random = seeded(11);
    const started = Date.now();
    const all = await start(FRAMEWORKS);
    await spread(12, all, random);
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
      churn(random, () => !publishing),
    ]);
    expect(results.flatMap((result) => result.failures)).toEqual([]);
    const expected = results.flatMap((result) => result.ids).sort(bySequence);
    expect(new Set(expected).size).toBe(400);
    await caughtUp(expected, 20_000);
    const counts = tally(clients, expected);
    for (const client of clients) expect(client.ids()).toEqual(expected);
    expect(counts).toEqual({ lost: 0, duplicated: 0, foreign: 0 });
    expect(moves).toBeGreaterThan(10);
    const reconnects = clients.reduce((sum, client) => sum + client.connects - 1, 0);
    console.info(
      `[nats] ${all.length} instances (${all.map((instance) => instance.framework).join(', ')}), ${clients.length} clients, ` +
        `${expected.length} events from ${all.length + 1} publishers, ${reconnects} reconnects to other instances: ` +
        `lost ${counts.lost}, duplicated ${counts.duplicated}, resets ${clients.reduce((sum, client) => sum + client.resets, 0)} (${Date.now() - started} ms)`,
    );
  });

  test('an instance killed with SIGKILL mid-stream: its clients reconnect to a survivor and lose nothing', async () => {
    const random = seeded(21);
    const all = await start(FRAMEWORKS);
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
    const expected = [...ids, ...results.flatMap((result) => result.ids)].sort(bySequence);
    await caughtUp(expected, 20_000);
    for (const client of onVictim) {
      expect(client.instance).not.toBe(victim);
      expect(client.connects).toBeGreaterThanOrEqual(2);
    }
    const counts = tally(clients, expected);
    for (const client of clients) expect(client.ids()).toEqual(expected);
    expect(counts).toEqual({ lost: 0, duplicated: 0, foreign: 0 });
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
    await spread(6, all, random);
    const { connection, channel, reported } = await publisher();
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
    await eventually(
      () => clients.every((client) => client.ids().includes(firstAfter)),
      10_000,
      'the first event after the restart on every client',
    ).catch((error) => {
      throw new Error(
        `${(error as Error).message}: ${clients.map((client) => client.describe(ids)).join(', ')}\n${instances.map((i) => i.output()).join('\n')}`,
      );
    });
    const resumedMs = performance.now() - back;
    await publish(59);
    publishing = false;
    await moving;
    await caughtUp(ids, 30_000);
    // The publisher's backplane said once that it lost NATS, and went on.
    expect(reported).toEqual([
      expect.objectContaining({ name: 'NatsBackplaneError', message: expect.stringContaining('connection dropped') }),
    ]);
    const counts = tally(clients, ids);
    for (const client of clients) expect(client.ids()).toEqual(ids);
    expect(counts).toEqual({ lost: 0, duplicated: 0, foreign: 0 });
    console.info(
      `[nats] nats-server restarted after 60 of ${ids.length} events; the publish while down rejected; delivery to every client resumed ` +
        `${Math.round(resumedMs)} ms after the restart: lost ${counts.lost}, duplicated ${counts.duplicated}`,
    );
  });
});
