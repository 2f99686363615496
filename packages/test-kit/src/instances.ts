/**
 * The backplanes' multi-instance harness: app instances as separate processes (a fixture of the
 * backplane package that calls {@link serveInstance}), and SSE clients that follow the ids they
 * receive, reconnecting by themselves when dropped and moved between instances by the test, as
 * browsers behind a load balancer are. What is left to each package is its backplane: the
 * fixture's environment, the publishers in the test process, and the outages.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { InstanceReply, InstanceRequest } from './instance-fixture.js';
import { readSse, type SseReader } from './reader.js';
import type { Framework } from './servers.js';
import { delay, eventually } from './wait.js';

/** A small deterministic generator, so that a failing run can be replayed exactly. */
export function seeded(seed: number): () => number {
  return () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
}

/** What an instance published on request: the ids, in the order it got them, and the errors. */
export interface Published {
  readonly ids: string[];
  readonly failures: string[];
}

/** One app instance in a process of its own. */
export interface Instance {
  readonly name: string;
  readonly framework: Framework;
  readonly url: string;
  readonly child: ChildProcess;
  alive: boolean;
  /** What the process wrote (backplane and channel errors), the last 20,000 characters. */
  output(): string;
  /** Has the instance publish `count` events, pausing up to `maxPauseMs` between them, from `concurrency` loops. */
  publish(count: number, maxPauseMs?: number, concurrency?: number): Promise<Published>;
  /** SIGKILL: a crash. */
  kill(): Promise<void>;
  /** Asks it to close everything and exit; SIGKILL after 5 s. */
  close(): Promise<void>;
}

export interface InstanceOptions {
  /** The fixture to run with `node --import tsx`: a module that calls {@link serveInstance}. */
  fixture: string;
  name: string;
  framework: Framework;
  /** What the fixture needs to make its backplane. FRAMEWORK and NAME are set from the above. */
  env: Record<string, string>;
  /** Said with the name and framework in errors: the client library, say. */
  detail?: string;
}

/** Starts an instance from `fixture`; resolves once it serves, with its URL. */
export async function startInstance({ fixture, name, framework, env, detail }: InstanceOptions): Promise<Instance> {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture], {
    // `--import tsx` resolves from the working directory: the package that holds the fixture
    // has tsx among its dev dependencies.
    cwd: packageOf(fixture),
    env: { ...process.env, ...env, FRAMEWORK: framework, NAME: name },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const label = `instance ${name} (${[framework, detail].filter(Boolean).join(', ')})`;
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
        reject(new Error(`${label} sent no ${type} within ${timeoutMs} ms:\n${output}`));
      }, timeoutMs);
      waiters.add(check);
      void exited.then(() => {
        if (!waiters.has(check)) return;
        clearTimeout(timer);
        waiters.delete(check);
        reject(new Error(`${label} exited before it sent ${type}:\n${output}`));
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
    publish: async (count, maxPauseMs = 3, concurrency = 1) => {
      request({ type: 'publish', count, maxPauseMs, concurrency });
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

/** The nearest directory above `file` with a package.json. */
function packageOf(file: string): string {
  for (let dir = path.dirname(path.resolve(file)); ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`${file} is in no package`);
  }
}

/**
 * An SSE client that follows the ids it received. It reconnects by itself when its instance
 * drops it, as EventSource does, and the test moves it to another instance at random moments.
 */
export class RoamingClient<TInstance extends Instance = Instance> {
  /** Ids received over earlier connections. */
  private earlier: string[] = [];
  /** The id to resume from while the current connection has completed no block. */
  private lastId: string | undefined;
  reader: SseReader | undefined;
  instance!: TInstance;
  connects = 0;
  resets = 0;
  private moving = false;
  private stopped = false;

  constructor(
    private readonly pick: (not?: TInstance) => TInstance,
    private readonly random: () => number,
  ) {}

  /** Every id received, in order, over every connection. */
  ids(): string[] {
    return this.earlier.concat(this.reader?.events.map((event) => event.id!) ?? []);
  }

  /** Whether its connection has given it an id to resume from: the channel marks a new client with one. */
  resumable(): boolean {
    return this.reader?.lastEventId() !== undefined;
  }

  async connect(to: TInstance): Promise<void> {
    const lastEventId = this.reader?.lastEventId() ?? this.lastId;
    if (this.reader) {
      this.earlier = this.ids();
      this.resets += this.reader.events.filter((event) => event.event === 'reset').length;
      this.reader.close();
    }
    this.lastId = lastEventId;
    this.instance = to;
    this.reader = undefined;
    const reader = await readSse(`${to.url}/events`, { headers: lastEventId ? { 'last-event-id': lastEventId } : {} });
    this.reader = reader;
    this.connects++;
    // Dropped by the server (a crash, a replay that failed while the backplane was down): come back.
    void reader.ended.then(() => this.reconnectAfterDrop(reader));
  }

  /** Moves to another instance with its Last-Event-ID. */
  async move(): Promise<void> {
    if (this.moving || this.stopped) return;
    this.moving = true;
    try {
      await this.connect(this.pick(this.instance));
    } catch {
      // The instance was killed meanwhile, and the client has no connection: come back.
      void this.reconnectAfterDrop(undefined);
    } finally {
      this.moving = false;
    }
  }

  private async reconnectAfterDrop(dropped: SseReader | undefined): Promise<void> {
    for (let attempt = 0; attempt < 300 && !this.stopped; attempt++) {
      await delay(20 + this.random() * 50);
      // A move replaced the dropped connection, or is still opening one: let it finish. The
      // stream a move just opened may be the one that dropped, so this loop does not give up.
      if (this.stopped || this.reader !== dropped) return;
      if (this.moving) continue;
      this.moving = true;
      try {
        await this.connect(this.pick(this.instance.alive ? undefined : this.instance));
        return;
      } catch {
        // The instance is gone or not listening, and the attempt left no connection: try another.
        dropped = undefined;
      } finally {
        this.moving = false;
      }
    }
  }

  /** Where it stands against `expected`, for a failure's message. */
  describe(expected: string[]): string {
    const seen = new Set(this.ids());
    const missing = expected.flatMap((id) => (seen.has(id) ? [] : [id]));
    return (
      `${this.ids().length} on ${this.instance.name} after ${this.connects} connects (${this.reader ? this.reader.events.length : 'no'} events on this one${this.moving ? ', moving' : ''}` +
      `${missing.length > 0 ? `, missing ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? '…' : ''}` : ''})`
    );
  }

  stop(): void {
    this.stopped = true;
    this.reader?.close();
  }
}

/** Every client's losses, duplicates and ids that nobody published, summed. */
export interface Tally {
  lost: number;
  duplicated: number;
  foreign: number;
}

/**
 * The instances and the clients of one test, and the waits and counts over them. One per
 * suite: {@link Cluster.close} in `afterEach` stops the clients and closes the instances.
 */
export class Cluster<TInstance extends Instance = Instance> {
  readonly instances: TInstance[] = [];
  readonly clients: Array<RoamingClient<TInstance>> = [];

  /** Keeps the instances `starting`, and resolves with them once all have started. */
  async add(starting: Array<Promise<TInstance>>): Promise<TInstance[]> {
    const settled = await Promise.allSettled(starting);
    const started = settled.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    // Those that did start are closed with the rest, even when another failed.
    this.instances.push(...started);
    const failed = settled.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
    return started;
  }

  /** `count` clients spread round-robin over `over`, each with its resume point before anything is published. */
  async spread(count: number, over: TInstance[], random: () => number): Promise<Array<RoamingClient<TInstance>>> {
    const pick = (not?: TInstance) => {
      const candidates = over.filter((instance) => instance.alive && instance !== not);
      return candidates[Math.floor(random() * candidates.length)]!;
    };
    const made = Array.from({ length: count }, () => new RoamingClient(pick, random));
    this.clients.push(...made);
    await Promise.all(made.map((client, index) => client.connect(over[index % over.length]!)));
    await eventually(() => made.every((client) => client.resumable()), 10_000, 'every client’s resume point');
    return made;
  }

  /** Moves a random client to another instance every few ms, until `until()`; resolves with the number of moves. */
  async churn(random: () => number, until: () => boolean): Promise<number> {
    let moves = 0;
    while (!until()) {
      await delay(5 + random() * 15);
      const candidates = this.clients.filter((client) => client.resumable());
      if (candidates.length === 0) continue;
      await candidates[Math.floor(random() * candidates.length)]!.move();
      moves++;
    }
    return moves;
  }

  /** Waits until `predicate` holds for every client; the failure says where each stands against `expected`, and what the instances wrote. */
  async everyClient(
    predicate: (client: RoamingClient<TInstance>) => boolean,
    timeoutMs: number,
    what: string,
    expected: string[],
  ): Promise<void> {
    await eventually(() => this.clients.every(predicate), timeoutMs, what).catch((error) => {
      throw new Error(
        `${(error as Error).message}; got ${this.clients.map((client) => client.describe(expected)).join(', ')} of ${expected.length}\n` +
          this.instances.map((instance) => `--- ${instance.name}:\n${instance.output()}`).join('\n'),
      );
    });
  }

  /** Waits until every client has caught up with `expected`, expects each to have exactly `expected`, and returns the tally. */
  async everyClientGets(expected: string[], timeoutMs: number): Promise<Tally> {
    await this.everyClient((client) => client.ids().length >= expected.length, timeoutMs, 'every client to catch up', expected);
    const counts = this.tally(expected);
    for (const client of this.clients) expect(client.ids()).toEqual(expected);
    expect(counts).toEqual({ lost: 0, duplicated: 0, foreign: 0 });
    return counts;
  }

  /** Every client's losses, duplicates and unexpected ids against `expected`. */
  tally(expected: string[]): Tally {
    const expectedSet = new Set(expected);
    const counts: Tally = { lost: 0, duplicated: 0, foreign: 0 };
    for (const client of this.clients) {
      const seen = client.ids();
      const seenSet = new Set(seen);
      counts.lost += expected.filter((id) => !seenSet.has(id)).length;
      counts.duplicated += seen.length - seenSet.size;
      counts.foreign += seen.filter((id) => !expectedSet.has(id)).length;
    }
    return counts;
  }

  /** Connections the clients opened beyond their first. */
  reconnects(): number {
    return this.clients.reduce((sum, client) => sum + client.connects - 1, 0);
  }

  /** `reset` events the clients got. */
  resets(): number {
    return this.clients.reduce((sum, client) => sum + client.resets, 0);
  }

  /** Stops every client, then closes every instance. */
  async close(): Promise<void> {
    for (const client of this.clients.splice(0)) client.stop();
    await Promise.all(this.instances.splice(0).map((instance) => instance.close()));
  }
}
