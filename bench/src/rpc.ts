/**
 * Requests and replies between the orchestrator and its server and client processes, over the
 * IPC channel of `child_process.fork` (advanced serialization, so typed arrays travel as is).
 */
import type { ChildProcess } from 'node:child_process';

export interface Request {
  readonly id: number;
  readonly cmd: string;
  readonly [key: string]: unknown;
}

export type Reply =
  | { readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly id: number; readonly ok: false; readonly error: string };

/** In a child: answers every request with what `handle` returns or throws. */
export function serve(handle: (request: Request) => unknown): void {
  process.on('message', (request: Request) => {
    Promise.resolve()
      .then(() => handle(request))
      .then(
        (result) => process.send!({ id: request.id, ok: true, result } satisfies Reply),
        (error: unknown) =>
          process.send!({
            id: request.id,
            ok: false,
            error: error instanceof Error ? (error.stack ?? error.message) : String(error),
          } satisfies Reply),
      );
  });
  // The orchestrator is gone (it crashed, or was killed): nothing here may outlive it.
  process.on('disconnect', () => process.exit(0));
}

/** In a child: a lifetime bound, whatever happens, so that no process is left behind. */
export function limitLifetime(ms: number): void {
  setTimeout(() => {
    console.error(`[bench] ${process.argv[1]} reached its ${ms} ms lifetime; exiting`);
    process.exit(3);
  }, ms).unref();
}

/** In the orchestrator: one child process and its requests. */
export class Peer {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void; timer: NodeJS.Timeout }>();
  private exitError: Error | undefined;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    child.on('message', (reply: Reply) => {
      const entry = this.pending.get(reply.id);
      if (!entry) return;
      this.pending.delete(reply.id);
      clearTimeout(entry.timer);
      if (reply.ok) entry.resolve(reply.result);
      else entry.reject(new Error(`${name}: ${reply.error}`));
    });
    child.once('exit', (code, signal) => {
      this.exitError = new Error(`${name} exited (${signal ?? `code ${code}`})`);
      for (const entry of this.pending.values()) {
        clearTimeout(entry.timer);
        entry.reject(this.exitError);
      }
      this.pending.clear();
    });
  }

  get exited(): boolean {
    return this.exitError !== undefined;
  }

  call<T>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 60_000): Promise<T> {
    if (this.exitError) return Promise.reject(this.exitError);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: no answer to ${cmd} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve, reject, timer });
      this.child.send({ id, cmd, ...args } satisfies Request);
    });
  }
}
