import type { Row } from './statements.js';

/** What a driver tells the backplane about its listening connection. */
export interface DriverEvents {
  /** A NOTIFY payload on the backplane's channel. */
  notification(payload: string): void;
  /**
   * LISTEN is active again on a connection that had been lost (or on a new one): notifications
   * sent meanwhile are gone, so every reader catches up from the table.
   */
  relistened(): void;
  /** PostgreSQL, or the listening connection, was lost: told once per outage. */
  lost(error: unknown): void;
}

/** What a driver needs to know. */
export interface DriverOptions {
  /** The NOTIFY channel, and the LISTEN statement for it. */
  readonly notifyChannel: string;
  readonly listenStatement: string;
  /** The deadline of every statement, and of every wait for a connection. */
  readonly timeoutMs: number;
  readonly events: DriverEvents;
}

/**
 * One client library behind one interface: statements within a deadline, each failing with a
 * `PostgresBackplaneError`, and one listening connection per backplane that comes back by
 * itself after an outage.
 */
export interface Driver {
  /** Whether PostgreSQL is known to be out of reach right now: a publish then rejects at once. */
  readonly down: boolean;
  /** Counts the times LISTEN became active, so that a starting reader can tell that it missed one. */
  readonly epoch: number;
  /** Runs one statement (autocommit) and resolves to its rows. `what` names it in the error message. */
  query(text: string, values: readonly unknown[], what: string): Promise<readonly Row[]>;
  /** Runs statements in one transaction. */
  transaction(statements: ReadonlyArray<readonly [string, readonly unknown[]]>, what: string): Promise<void>;
  /**
   * Resolves to true once LISTEN is active, starting it on the first call; waits through an
   * outage. Resolves to false once the driver is closed.
   */
  listen(): Promise<boolean>;
  /** Reports a failure of a statement as part of the current outage, once per outage. */
  report(error: unknown): void;
  /** Ends the listening connection and every wait. Never touches the injected pool. */
  close(): Promise<void>;
}
