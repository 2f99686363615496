import type { PostgresJsQuery, PostgresJsSql } from './client.js';
import type { Driver, DriverOptions } from './driver.js';
import { isConnectionError, messageOf, PostgresBackplaneError, sqlStateOf } from './error.js';
import { backoff, Interrupter, withDeadline } from './interrupter.js';
import type { Row } from './statements.js';

const MAX_BACKOFF_MS = 1000;
const noop = () => {};

/**
 * postgres.js: statements through the `sql` pool, and `sql.listen` for the listening
 * connection, which postgres.js opens apart from the pool, re-listens on after a loss (at the
 * pace of its `backoff` option), and announces through `onlisten`. postgres.js does not
 * announce a loss, so the backplane learns that PostgreSQL is down from a statement that fails
 * to reach it. It then rejects publishes at once, probes until PostgreSQL answers again, and
 * listens anew, since the listening connection was most likely lost too; readers catch up as
 * soon as LISTEN is active again.
 */
export function postgresJsDriver(sql: PostgresJsSql, options: DriverOptions): Driver {
  return new PostgresJsDriver(sql, options);
}

class PostgresJsDriver implements Driver {
  /** Whether a statement failed to reach PostgreSQL, and none has reached it since. */
  down = false;
  epoch = 0;
  private readonly timeoutMs: number;
  /** Whether LISTEN was asked for. */
  private wanted = false;
  /** Whether LISTEN is active, as far as the backplane knows. */
  private active = false;
  /** Identifies the current `sql.listen` call: callbacks of an older one are ignored. */
  private request: object | undefined;
  private unlisten: (() => Promise<unknown>) | undefined;
  private readonly waiters = new Set<(listening: boolean) => void>();
  private readonly interrupter = new Interrupter();
  /** Probing PostgreSQL and listening again, after a loss. */
  private recovering: Promise<void> | undefined;
  /** Whether `lost` was told about the current outage already. */
  private outage = false;
  private closed = false;

  constructor(
    private readonly sql: PostgresJsSql,
    private readonly options: DriverOptions,
  ) {
    this.timeoutMs = options.timeoutMs;
  }

  async query(text: string, values: readonly unknown[], what: string): Promise<readonly Row[]> {
    // postgres.js returns its own Array subclass (from another realm, when it was loaded as
    // ESM under a CommonJS host): the backplane works on plain arrays.
    const rows = Array.from(await this.run(this.sql.unsafe(text, [...values], { prepare: true }), what)) as Row[];
    this.reached();
    return rows;
  }

  async transaction(statements: ReadonlyArray<readonly [string, readonly unknown[]]>, what: string): Promise<void> {
    const done = this.sql.begin(async (tx) => {
      for (const [text, values] of statements) await tx.unsafe(text, [...values]);
    });
    await this.run(Object.assign(done, { cancel: noop }), what);
    this.reached();
  }

  listen(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    const listening = this.active ? Promise.resolve(true) : new Promise<boolean>((resolve) => this.waiters.add(resolve));
    if (!this.wanted) {
      this.wanted = true;
      void this.listenOnce().then((ok) => ok || this.recover());
    }
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
    if (this.closed) return;
    this.closed = true;
    this.interrupter.interrupt();
    for (const resolve of this.waiters) resolve(false);
    this.waiters.clear();
    this.request = undefined;
    await this.recovering;
    await withDeadline(this.unlisten?.() ?? Promise.resolve(), this.timeoutMs, () => new Error('UNLISTEN timed out')).catch(noop);
  }

  /** Awaits one query within the deadline, cancelling it after; failures become typed errors. */
  private async run<T>(query: PromiseLike<T> & Pick<PostgresJsQuery, 'cancel'>, what: string): Promise<T> {
    let timedOut = false;
    try {
      return await withDeadline(Promise.resolve(query), this.timeoutMs, () => {
        timedOut = true;
        // Drops it if it still waits for a connection; once sent, it may still run.
        void Promise.resolve(query.cancel()).catch(noop);
        return new PostgresBackplaneError(`${what} failed: PostgreSQL did not answer within ${this.timeoutMs} ms.`, { sent: true });
      });
    } catch (error) {
      if (timedOut) throw error;
      if (isConnectionError(error)) this.lose(error);
      throw new PostgresBackplaneError(`${what} failed: ${messageOf(error)}.`, { cause: error, sent: sentAfter(error) });
    }
  }

  /** A statement reached PostgreSQL. */
  private reached(): void {
    this.down = false;
    if (this.active) this.outage = false;
  }

  /** A statement failed to reach PostgreSQL: publishes reject at once until a probe answers. */
  private lose(error: unknown): void {
    if (this.closed) return;
    this.down = true;
    // The listening connection was most likely lost too, without a word from postgres.js.
    this.active = false;
    this.report(error);
    this.recover();
  }

  private recover(): void {
    this.recovering ??= this.recoverLoop().finally(() => (this.recovering = undefined));
  }

  /** Probes until PostgreSQL answers, then listens anew until LISTEN is active. */
  private async recoverLoop(): Promise<void> {
    for (let attempt = 0; !this.closed; attempt++) {
      await this.interrupter.pause(backoff(attempt, MAX_BACKOFF_MS));
      if (this.closed) return;
      if (this.down) {
        try {
          await withDeadline(Promise.resolve(this.sql.unsafe('SELECT 1')), this.timeoutMs, () => new Error('no answer'));
        } catch {
          continue;
        }
        this.down = false;
      }
      if (!this.wanted || this.active || (await this.listenOnce())) return;
    }
  }

  /**
   * Calls `sql.listen` (after dropping an earlier call); resolves to whether LISTEN is active.
   * Its `onlisten` comes again each time postgres.js re-listens after a loss of its own.
   */
  private async listenOnce(): Promise<boolean> {
    const unlisten = this.unlisten;
    this.unlisten = undefined;
    if (unlisten) await withDeadline(unlisten(), this.timeoutMs, () => new Error('UNLISTEN timed out')).catch(noop);
    if (this.closed) return false;
    const request = {};
    this.request = request;
    const onNotify = (payload: string) => {
      if (this.request === request) this.options.events.notification(payload);
    };
    const onListen = () => {
      if (this.request !== request) return;
      // The outage ends with the next statement PostgreSQL answers (reached), not here:
      // postgres.js re-listens on its own, and can do so on a server that is still going down,
      // which would make one crash two reported outages.
      this.active = true;
      this.epoch++;
      for (const resolve of this.waiters) resolve(true);
      this.waiters.clear();
      // Any LISTEN but the very first follows a loss: notifications may be gone.
      if (this.epoch > 1) this.options.events.relistened();
    };
    try {
      const meta = await withDeadline(this.sql.listen(this.options.notifyChannel, onNotify, onListen), this.timeoutMs, () =>
        Object.assign(new Error(`LISTEN did not answer within ${this.timeoutMs} ms`), { code: 'LISTEN_TIMEOUT' }),
      );
      if (this.request === request && !this.closed) {
        this.unlisten = () => meta.unlisten();
        return this.active;
      }
      void meta.unlisten().catch(noop);
      return false;
    } catch (error) {
      // A late answer to this call is dropped.
      if (this.request === request) this.request = undefined;
      if (isConnectionError(error) && !this.recovering) this.down = true;
      this.report(error);
      return false;
    }
  }
}

/** Whether a statement that failed with `error` may have run all the same. */
function sentAfter(error: unknown): boolean {
  if (sqlStateOf(error) !== undefined) return false;
  // Failures to connect at all: the statement never left.
  const code = (error as { code?: unknown } | undefined)?.code;
  return !(
    typeof code === 'string' && /^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|CONNECT_TIMEOUT|CONNECTION_ENDED)$/.test(code)
  );
}
