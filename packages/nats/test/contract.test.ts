/**
 * The public backplane contract (`@ssekit/core/testing`) on NATS JetStream, on a nats-server of
 * the suite's own with file storage, which the contract stops and starts again. Backplanes with
 * another `maxLen` use a stream of their own: the limit is the stream's.
 */
import type { NatsConnection } from '@nats-io/nats-core';
import { runBackplaneContract } from '@ssekit/core/testing';
import { createNatsBackplane } from '../src/index.js';
import { connectNats, startPrivateNats, type PrivateNats } from './nats.js';

let nats: PrivateNats;
beforeAll(async () => {
  nats = await startPrivateNats();
});
afterAll(() => nats?.close());

const connections: NatsConnection[] = [];
runBackplaneContract('NATS JetStream', {
  async create({ maxLen }) {
    const connection = await connectNats(nats.url);
    connections.push(connection);
    return createNatsBackplane({ connection, stream: maxLen ? `contract_len${maxLen}` : 'contract', maxLen, onError() {} });
  },
  engine: { stop: () => nats.stop(), start: () => nats.start() },
  async cleanup() {
    for (const connection of connections.splice(0)) await connection.close();
  },
});
