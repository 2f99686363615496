/**
 * The public backplane contract (`@ssekit/core/testing`) on the in-memory backplane. It has no
 * engine to stop, and one log per process: each "instance" the contract makes is a view of one
 * shared backplane, with a close() of its own, as instances on one Redis are views of its logs.
 */
import { createMemoryBackplane, SseError, type Backplane, type BackplaneSubscription } from '@ssekit/core';
import { runBackplaneContract } from '@ssekit/core/testing';

const shared = new Map<number | undefined, Backplane>();

function instanceOf(backplane: Backplane): Backplane {
  const subscriptions = new Set<BackplaneSubscription>();
  let closed = false;
  const closedError = () => new SseError('ERR_SSE_CLOSED', 'This instance is closed.');
  return {
    originId: backplane.originId,
    publish: (channel, entry) => (closed ? Promise.reject(closedError()) : backplane.publish(channel, entry)),
    subscribe(channel, listener) {
      if (closed) throw closedError();
      const subscription = backplane.subscribe(channel, listener) as BackplaneSubscription;
      subscriptions.add(subscription);
      return subscription;
    },
    replay: (channel, afterId, limit) => backplane.replay(channel, afterId, limit),
    close() {
      closed = true;
      for (const subscription of subscriptions) subscription.unsubscribe();
    },
  };
}

runBackplaneContract('the in-memory backplane', {
  create({ maxLen }) {
    let backplane = shared.get(maxLen);
    if (!backplane) shared.set(maxLen, (backplane = createMemoryBackplane({ history: { maxEvents: maxLen ?? 1000 } })));
    return instanceOf(backplane);
  },
});
