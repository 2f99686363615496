/**
 * A TCP proxy in front of a NATS server, for cutting one connection off while the server and
 * every other connection stay up: what a network partition does to one instance.
 */
import net from 'node:net';

export interface Proxy {
  /** `nats://127.0.0.1:<port>`: connect here to go through the proxy. */
  readonly url: string;
  /** Drops every connection and refuses new ones until {@link Proxy.restore}. */
  cut(): void;
  /** Holds what both sides send (connections stay open, nothing passes) until {@link Proxy.restore}. */
  stall(): void;
  /** Accepts and forwards again. */
  restore(): void;
  close(): Promise<void>;
}

export async function startProxy(target: string): Promise<Proxy> {
  const { hostname, port } = new URL(target);
  const pairs = new Set<[net.Socket, net.Socket]>();
  let state: 'open' | 'cut' | 'stalled' = 'open';
  const server = net.createServer((client) => {
    if (state === 'cut') return void client.destroy();
    const upstream = net.connect({ host: hostname, port: Number(port) });
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const socket of pair) socket.on('error', end).on('close', end);
    if (state === 'open') flow(pair);
  });
  const flow = ([client, upstream]: [net.Socket, net.Socket]) => {
    client.pipe(upstream);
    upstream.pipe(client);
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as net.AddressInfo;
  return {
    url: `nats://127.0.0.1:${address.port}`,
    cut() {
      state = 'cut';
      for (const [client, upstream] of [...pairs]) {
        client.destroy();
        upstream.destroy();
      }
    },
    stall() {
      state = 'stalled';
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
    restore() {
      if (state === 'stalled') for (const pair of pairs) flow(pair);
      state = 'open';
    },
    async close() {
      state = 'cut';
      for (const [client, upstream] of [...pairs]) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
