/**
 * A run that went wrong in a way the bench expected it might: an event lost, a stream not
 * opened, a wait timed out. It fails that run alone; the load clients can go on as they are.
 * Any other error (a client process that died, a reply that never came) restarts them.
 */
export class RunFailure extends Error {
  override readonly name = 'RunFailure';
}
