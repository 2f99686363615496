import type http from 'node:http';
import type { Channel } from '@ssekit/core';
import { eventually, type TestApp } from '@ssekit/test-kit';

/**
 * Publishes events 1 to `total` (event `n`, data `{ n }`) on `feed`, cutting the client's stream at
 * 20 random points: half of them a clean end of the response, half a dropped connection. Before
 * each cut it waits until `isBack()` says that a connection newer than the last one cut is open
 * on both ends: a cut while the client is still reconnecting would cut nothing.
 */
export async function publishWithCuts(
  feed: Channel<{ n: { n: number } }>,
  total: number,
  app: TestApp,
  connections: ReadonlyArray<{ request: http.IncomingMessage }>,
  isBack: () => boolean,
  what: string,
): Promise<void> {
  const cuts = new Set<number>();
  while (cuts.size < 20) cuts.add(50 + Math.floor(Math.random() * (total - 100)));
  let cutAt = 0;
  for (let n = 1; n <= total; n++) {
    await feed.publish({ event: 'n', data: { n } });
    if (cuts.has(n)) {
      await eventually(() => connections.length > cutAt && isBack(), 10_000, what);
      cutAt = connections.length;
      if (n % 2) app.streams.at(-1)!.close();
      else connections.at(-1)!.request.socket.destroy();
    }
    if (n % 50 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
  }
}
