/**
 * Type tests, checked by tsc and never run: a connection from @nats-io/transport-node fits
 * `connection` as it comes, and anything else does not.
 */
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import type { Backplane } from '@ssekit/core';
import { createNatsBackplane, NatsBackplaneError, type NatsBackplaneOptions } from '@ssekit/nats';

declare const connection: NatsConnection;
const backplane: Backplane = createNatsBackplane({ connection });
createNatsBackplane({ connection, stream: 'app', maxLen: 100, maxAgeMs: 60_000, timeoutMs: 2000, heartbeatMs: 1000, onError: () => {} });
async function fromTransport(): Promise<Backplane> {
  return createNatsBackplane({ connection: await connect({ servers: 'nats://127.0.0.1:4222', maxReconnectAttempts: -1 }) });
}
const options: NatsBackplaneOptions = { connection };
void backplane;
void fromTransport;
void options;

// @ts-expect-error a connection is required
createNatsBackplane({});
// @ts-expect-error a URL is not a connection
createNatsBackplane({ connection: 'nats://127.0.0.1:4222' });
// @ts-expect-error the stream is a name
createNatsBackplane({ connection, stream: 5 });

const error = new NatsBackplaneError('x', { sent: false });
const code: 'ERR_SSE_BACKPLANE_UNAVAILABLE' = error.code;
const sent: boolean = error.sent;
void code;
void sent;
