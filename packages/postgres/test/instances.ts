/**
 * App instances as separate processes (fixtures/instance.ts), and SSE clients that follow the
 * ids they receive, reconnecting by themselves when dropped and moved between instances by the
 * test, as browsers behind a load balancer are.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { readSse, type Framework, type SseReader } from '@ssekit/test-kit';
import type { InstanceReply, InstanceRequest } from './fixtures/instance.js';
import type { Flavour } from './postgres.js';

const PACKAGE_ROOT = path.resolve(__dirname, '..');
const FIXTURE = path.join(__dirname, 'fixtures', 'instance.ts');

/** A small deterministic generator, so that a failing run can be replayed exactly. */
export function seeded(seed: number) {
  return () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
}

/** Ids are 1, 2, 3...: ordered as numbers. */
export const byId = (a: string, b: string) => Number(a) - Number(b);

/** One app instance in a process of its own. */
export interface Instance {
  readonly name: string;
  readonly framework: Framework;
  readonly flavour: Flavour;
  readonly url: string;
  readonly child: ChildProcess;
  alive: boolean;
  /** What the process wrote (backplane and channel errors). */
  output(): string;
  /** Has the instance publish `count` events, pausing up to `maxPauseMs` between them, from `concurrency` loops. */
  publish(count: number, maxPauseMs?: number, concurrency?: number): Promise<{ ids: string[]; failures: string[] }>;
  kill(): Promise<void>;
  close(): Promise<void>;
}

export async function startInstance(name: string, framework: Framework, flavour: Flavour, url: string, table: string): Promise<Instance> {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
    cwd: PACKAGE_ROOT,
    env: { ...process.env, FRAMEWORK: framework, FLAVOUR: flavour, PG_URL: url, TABLE: table, NAME: name },
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
        reject(new Error(`instance ${name} (${framework}, ${flavour}) sent no ${type} within ${timeoutMs} ms:\n${output}`));
      }, timeoutMs);
      waiters.add(check);
      void exited.then(() => {
        if (!waiters.has(check)) return;
        clearTimeout(timer);
        waiters.delete(check);
        reject(new Error(`instance ${name} (${framework}, ${flavour}) exited before it sent ${type}:\n${output}`));
      });
      check();
    });
  const request = (message: InstanceRequest) => child.send(message);
  const { url: appUrl } = await next('ready', 30_000);
  const instance: Instance = {
    name,
    framework,
    flavour,
    url: appUrl,
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

/**
 * An SSE client that follows the ids it received. It reconnects by itself when its instance
 * drops it, as EventSource does, and the test moves it to another instance at random moments.
 */
export class Client {
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
    // Dropped by the server (a crash, a replay that failed while PostgreSQL was down): come back.
    void reader.ended.then(() => this.reconnectAfterDrop(reader));
  }

  /** The id to resume from when the last connection never completed a block. */
  private lastId: string | undefined;

  /** Moves to another instance with its Last-Event-ID. */
  async move(): Promise<void> {
    if (this.moving || this.stopped) return;
    this.moving = true;
    try {
      await this.connect(this.pick(this.instance));
    } catch {
      // The instance was killed meanwhile: the drop handler takes the client elsewhere.
    } finally {
      this.moving = false;
    }
  }

  private async reconnectAfterDrop(dropped: SseReader): Promise<void> {
    for (let attempt = 0; attempt < 300 && !this.stopped; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 20 + this.random() * 50));
      // A move replaced the dropped connection, or is still opening one: let it finish. The
      // stream a move just opened may be the one that dropped, so this loop does not give up.
      if (this.stopped || this.reader !== dropped) return;
      if (this.moving) continue;
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

/** Every client's loss, duplicate and unexpected-id counts against `expected`. */
export function tally(clients: Client[], expected: string[]) {
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
