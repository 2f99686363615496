import type { NatsConnection, Status } from '@nats-io/nats-core';
import { NatsBackplaneError } from './error.js';

/** The NATS client's own view of its socket: read when present, since it changes before any event. */
interface ProtocolState {
  readonly protocol?: { readonly connected?: unknown };
}

/**
 * The backplane's view of the injected connection: whether a request sent now goes out on a live
 * socket, and a way to run requests that fail at once while it does not. The NATS client queues
 * what is sent while it reconnects, and sends it later; a publish must not wait there, to be
 * appended after it was rejected.
 */
export class Link {
  private readonly connection: NatsConnection;
  private readonly statuses: AsyncIterable<Status> & { stop?(): void };
  /** Connected, as the status events say: the fallback when the client's own flag is absent. */
  private tracked = true;
  private readonly drops = new Set<() => void>();
  private readonly reconnectListeners = new Set<() => void>();
  private readonly closeListeners = new Set<() => void>();
  private readonly disconnectListeners = new Set<() => void>();

  constructor(connection: NatsConnection) {
    this.connection = connection;
    this.statuses = connection.status();
    void this.watch();
  }

  /** Whether a request sent now goes straight out on a live connection. */
  connected(): boolean {
    if (this.connection.isClosed()) return false;
    const connected = (this.connection as ProtocolState).protocol?.connected;
    return typeof connected === 'boolean' ? connected : this.tracked;
  }

  /** Calls `listener` after each reconnect; returns a function that stops that. */
  onReconnect(listener: () => void): () => void {
    this.reconnectListeners.add(listener);
    return () => void this.reconnectListeners.delete(listener);
  }

  /** Calls `listener` after each disconnect. */
  onDisconnect(listener: () => void): () => void {
    this.disconnectListeners.add(listener);
    return () => void this.disconnectListeners.delete(listener);
  }

  /** Calls `listener` once the connection closed for good. */
  onClose(listener: () => void): () => void {
    this.closeListeners.add(listener);
    return () => void this.closeListeners.delete(listener);
  }

  /**
   * Runs `request` if the connection is up, and rejects at once (`sent: false`) if it is not.
   * Rejects as soon as the connection drops before `request` settles (`sent: true`: it may have
   * had its effect), and aborts `signal` then, so that `request` can stop what it started.
   * Other errors pass through as they are.
   */
  run<T>(what: string, request: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (!this.connected()) {
      return Promise.reject(new NatsBackplaneError(`${what} failed: the NATS connection is not connected.`, { sent: false }));
    }
    const controller = new AbortController();
    return new Promise<T>((resolve, reject) => {
      const drop = () => {
        controller.abort();
        reject(new NatsBackplaneError(`${what} failed: the NATS connection dropped before NATS answered.`, { sent: true }));
      };
      this.drops.add(drop);
      // A request that throws instead of rejecting rejects all the same.
      Promise.resolve()
        .then(() => request(controller.signal))
        .then(resolve, reject)
        .finally(() => this.drops.delete(drop));
    });
  }

  /** Stops watching the connection. */
  close(): void {
    this.statuses.stop?.();
    this.dropAll();
    this.reconnectListeners.clear();
    this.closeListeners.clear();
    this.disconnectListeners.clear();
  }

  private async watch(): Promise<void> {
    for await (const status of this.statuses) {
      switch (status.type) {
        case 'disconnect':
          this.tracked = false;
          this.dropAll();
          for (const listener of [...this.disconnectListeners]) listener();
          break;
        case 'reconnect':
          this.tracked = true;
          for (const listener of [...this.reconnectListeners]) listener();
          break;
        case 'close':
          this.tracked = false;
          this.dropAll();
          for (const listener of [...this.closeListeners]) listener();
          break;
      }
    }
  }

  private dropAll(): void {
    for (const drop of [...this.drops]) drop();
    this.drops.clear();
  }
}
