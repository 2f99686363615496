import type { PgPool, PgPoolClient } from './client.js';
import type { Driver, DriverOptions } from './driver.js';
import { isConnectionError, messageOf, PostgresBackplaneError, sqlStateOf } from './error.js';
import { backoff, INTERRUPTED, Interrupter, withDeadline } from './interrupter.js';
import type { Row } from './statements.js';

/** The longest pause between two attempts to get the listening connection back. */
const MAX_BACKOFF_MS = 1000;

/** The listening connection: a client of the pool's own class, made with the pool's options. */
interface ListenClient {
  connect(): Promise<unknown>;
  query(text: string): Promise<unknown>;
  end(): Promise<void>;
  on(event: 'notification', listener: (message: { channel: string; payload?: string }) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
}
type ListenClientClass = new (options: object) => ListenClient;

const noop = () => {};

/**
 * node-postgres: statements on clients the pool lends (checked out explicitly, so that a wait
 * for a free client has a deadline and a statement never runs after its publish was rejected),
 * and one listening client of the backplane's own. Its state is the backplane's knowledge of
 * PostgreSQL: while it is lost, publishes reject at once instead of queueing in the pool.
 */
export function pgDriver(pool: PgPool, options: DriverOptions): Driver {
  return new PgDriver(pool, options);
}

class PgDriver implements Driver {
  down = false;
  epoch = 0;
  private readonly ClientClass: ListenClientClass;
  private readonly timeoutMs: number;
  /** The listening client once connected, until it is lost. */
  private client: ListenClient | undefined;
  /** Whether LISTEN was asked for: it is sent on every connection from then on. */
  private wanted = false;
  /** Whether LISTEN is active on `client`. */
  private active = false;
  /** LISTEN sent on `client` and not yet answered. */
  private pending: Promise<unknown> | undefined;
  private readonly waiters = new Set<(listening: boolean) => void>();
  private readonly interrupter = new Interrupter();
  private readonly loop: Promise<void>;
  /** Whether `lost` was told about the current outage already. */
  private outage = false;
  private closed = false;

  constructor(
    private readonly pool: PgPool,
    private readonly options: DriverOptions,
  ) {
    this.ClientClass = (pool as unknown as { Client: ListenClientClass }).Client;
    this.timeoutMs = options.timeoutMs;
    // Connected from the start, though it listens only once asked: its state is what tells a
    // publish, at once, that PostgreSQL is out of reach.
    this.loop = this.run();
  }

  async query(text: string, values: readonly unknown[], what: string): Promise<readonly Row[]> {
    const client = await this.checkout(what);
    let broken: Error | undefined;
    try {
      const result = await withDeadline(client.query({ text, values: [...values] }), this.timeoutMs, () => {
        broken = new PostgresBackplaneError(`${what} failed: PostgreSQL did not answer within ${this.timeoutMs} ms.`, { sent: true });
        return broken;
      });
      if (!this.down) this.outage = false;
      return result.rows as Row[];
    } catch (error) {
      if (error instanceof PostgresBackplaneError) throw error;
      if (isConnectionError(error)) broken = error as Error;
      throw failure(what, error);
    } finally {
      // A client whose connection broke, or whose statement is still running, is destroyed.
      client.removeListener('error', noop);
      client.release(broken);
    }
  }

  async transaction(statements: ReadonlyArray<readonly [string, readonly unknown[]]>, what: string): Promise<void> {
    const client = await this.checkout(what);
    let broken: Error | undefined;
    const run = (text: string, values: readonly unknown[] = []) =>
      withDeadline(client.query({ text, values: [...values] }), this.timeoutMs, () => {
        broken = new PostgresBackplaneError(`${what} failed: PostgreSQL did not answer within ${this.timeoutMs} ms.`, { sent: true });
        return broken;
      });
    try {
      await run('BEGIN');
      for (const [text, values] of statements) await run(text, values);
      await run('COMMIT');
    } catch (error) {
      if (!broken && !isConnectionError(error)) await run('ROLLBACK').catch(() => (broken = error as Error));
      else broken ??= error as Error;
      throw error instanceof PostgresBackplaneError ? error : failure(what, error);
    } finally {
      client.removeListener('error', noop);
      client.release(broken);
    }
  }

  listen(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    this.wanted = true;
    if (this.active) return Promise.resolve(true);
    const listening = new Promise<boolean>((resolve) => this.waiters.add(resolve));
    if (this.client) void this.listenOn(this.client).catch(noop);
    return listening;
  }

  report(error: unknown): void {
    if (this.outage || this.closed) return;
    this.outage = true;
    this.options.events.lost(
      new PostgresBackplaneError(`The PostgreSQL backplane lost PostgreSQL; it keeps retrying. (${messageOf(error)})`, {
        cause: error,
        sent: false,
      }),
    );
  }

  async close(): Promise<void> {
    if (this.closed) return this.loop;
    this.closed = true;
    this.interrupter.interrupt();
    for (const resolve of this.waiters) resolve(false);
    this.waiters.clear();
    await this.loop;
  }

  /**
   * A client from the pool, or a rejection after the deadline: the pool queues a checkout while
   * all its clients are busy, and a client that comes after the deadline goes straight back.
   */
  private checkout(what: string): Promise<PgPoolClient> {
    const pending = this.pool.connect();
    return withDeadline(pending, this.timeoutMs, () => {
      pending.then((client) => client.release(), noop);
      return new PostgresBackplaneError(`${what} failed: the pool lent no connection within ${this.timeoutMs} ms.`, { sent: false });
    }).then(
      (client) => {
        // While lent, a client has no listener for a connection lost between two statements.
        client.on('error', noop);
        return client;
      },
      (error: unknown) => {
        throw error instanceof PostgresBackplaneError ? error : failure(what, error, false);
      },
    );
  }

  /**
   * Sends LISTEN on `client`, once; a failure ends the client, and the loop opens another.
   * Resolves once LISTEN is active on it.
   */
  private listenOn(client: ListenClient): Promise<unknown> {
    if (this.pending || this.active) return this.pending ?? Promise.resolve();
    const pending = withDeadline(client.query(this.options.listenStatement), this.timeoutMs, () => new Error('LISTEN timed out'));
    this.pending = pending;
    pending.then(
      () => {
        if (this.client !== client) return;
        this.pending = undefined;
        this.active = true;
        this.epoch++;
        for (const resolve of this.waiters) resolve(true);
        this.waiters.clear();
      },
      () => {
        if (this.client !== client) return;
        this.pending = undefined;
        void client.end().catch(noop);
      },
    );
    return pending;
  }

  /** The listening connection: connect, listen when asked, and on loss start over, with backoff. */
  private async run(): Promise<void> {
    for (let attempt = 0; !this.closed; attempt++) {
      const client = new this.ClientClass(this.pool.options);
      let markLost!: (error: unknown) => void;
      const lost = new Promise<unknown>((resolve) => (markLost = resolve));
      client.on('error', markLost);
      client.on('end', () => markLost(new Error('the connection ended')));
      client.on('notification', ({ channel, payload }) => {
        if (channel === this.options.notifyChannel && payload !== undefined && this.client === client)
          this.options.events.notification(payload);
      });
      const connected = withDeadline(
        Promise.race([client.connect(), lost.then((error) => Promise.reject(error as Error))]),
        this.timeoutMs,
        () => new Error(`no connection within ${this.timeoutMs} ms`),
      );
      try {
        if ((await this.interrupter.race(connected)) === INTERRUPTED) {
          await client.end().catch(noop);
          break;
        }
      } catch (error) {
        this.down = true;
        this.report(error);
        void client.end().catch(noop);
        await this.interrupter.pause(backoff(attempt, MAX_BACKOFF_MS));
        continue;
      }
      const relistening = this.wanted;
      this.client = client;
      this.active = false;
      this.pending = undefined;
      this.down = false;
      this.outage = false;
      attempt = -1;
      if (relistening) {
        // Notifications sent while the last connection was gone are lost: readers catch up.
        void this.listenOn(client).then(() => this.client === client && this.active && this.options.events.relistened(), noop);
      }
      const error = await this.interrupter.race(lost);
      this.client = undefined;
      this.active = false;
      this.pending = undefined;
      if (error === INTERRUPTED) {
        await withDeadline(client.end(), this.timeoutMs, () => new Error('end timed out')).catch(noop);
        break;
      }
      this.down = true;
      this.report(error);
      void client.end().catch(noop);
    }
  }
}

/** A PostgreSQL or connection failure as the backplane reports it. */
function failure(what: string, error: unknown, sent = sqlStateOf(error) === undefined): PostgresBackplaneError {
  return new PostgresBackplaneError(`${what} failed: ${messageOf(error)}.`, { cause: error, sent });
}
