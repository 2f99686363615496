/**
 * A TCP proxy on a free loopback port in front of a server (Redis, PostgreSQL, NATS), for doing
 * to one client's connections what a network does while the server and every other client stay
 * up: hold back what passes (a stall, a slow link), make connections go silent for good without
 * closing them (a dead peer behind a NAT), or cut them and refuse new ones (a partition).
 */
import net from 'node:net';

export interface TcpProxy {
  /** The target's URL with the proxy's port: connect here to go through it. */
  readonly url: string;
  /**
   * Holds back what passes on every connection, new ones too: both ways, or only what the server
   * sends. Connections stay open; {@link TcpProxy.restore} delivers what was held.
   */
  hold(direction?: 'both' | 'from-server'): void;
  /**
   * Drops for good what passes either way on the connections open now, or on the newest of them
   * only, without closing them. Connections opened later go through.
   */
  silence(which?: 'all' | 'newest'): void;
  /** Cuts every connection, and refuses new ones until {@link TcpProxy.restore}. */
  cut(): void;
  /** Forwards again: delivers what was held, and accepts new connections. */
  restore(): void;
  /** Cuts every connection and stops listening. */
  close(): Promise<void>;
}

/** One connection through the proxy, and what it holds back each way. */
interface Link {
  readonly client: net.Socket;
  readonly upstream: net.Socket;
  silent: boolean;
  readonly toServer: Buffer[];
  readonly toClient: Buffer[];
}

/** Starts a proxy to `target` (`redis://…`, `postgres://…`, `nats://…`: its host and port). */
export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const { hostname, port } = new URL(target);
  const links = new Set<Link>();
  let holding: 'both' | 'from-server' | undefined;
  let refusing = false;
  const server = net.createServer((client) => {
    if (refusing) return void client.destroy();
    const upstream = net.connect({ host: hostname, port: Number(port) });
    const link: Link = { client, upstream, silent: false, toServer: [], toClient: [] };
    links.add(link);
    client.on('data', (chunk: Buffer) => {
      if (link.silent) return;
      if (holding === 'both') link.toServer.push(chunk);
      else upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (link.silent) return;
      if (holding) link.toClient.push(chunk);
      else client.write(chunk);
    });
    const drop = () => {
      links.delete(link);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(target);
  url.port = String((server.address() as net.AddressInfo).port);
  const cutAll = () => {
    for (const { client, upstream } of links) {
      client.destroy();
      upstream.destroy();
    }
    links.clear();
  };
  return {
    url: url.href,
    hold: (direction = 'both') => {
      holding = direction;
    },
    silence: (which = 'all') => {
      if (links.size === 0) throw new Error('there is no connection through the proxy to silence');
      for (const link of which === 'all' ? links : [...links].slice(-1)) link.silent = true;
    },
    cut: () => {
      refusing = true;
      cutAll();
    },
    restore: () => {
      holding = undefined;
      refusing = false;
      for (const link of links) {
        for (const chunk of link.toServer.splice(0)) link.upstream.write(chunk);
        for (const chunk of link.toClient.splice(0)) link.client.write(chunk);
      }
    },
    close: async () => {
      refusing = true;
      cutAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
