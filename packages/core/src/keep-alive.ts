/**
 * Heartbeats for every stream of a process that shares a `keepAliveMs`, on one timer: a timing
 * wheel. A Node timer per stream costs some 200 bytes of heap (the Timeout, its boxed times, its
 * argument list), and a round of heartbeats over 19,000 streams costs 19,000 timer callbacks,
 * each with its own write and its own flush. Here the streams due in a tick get their
 * heartbeats in one pass (in passes of 1000, with a turn of the event loop between them), each a
 * write of one constant, pre-framed chunk.
 *
 * The contract: a heartbeat goes out between `keepAliveMs` and 1.2 × `keepAliveMs` after a
 * stream's last write (6 × `periodMs`, whole milliseconds, at most: 1.2 × keepAliveMs + 6 ms),
 * plus the timer's own lateness; never sooner. The wheel ticks every `periodMs` (a fifth of
 * `keepAliveMs`, rounded up); a write records only the tick count, an integer, so
 * that writing costs no clock read and no timer move. A stream that wrote in the interval after
 * tick `c` is due at tick `c + dueTicks`: by then at least `(dueTicks - 1) × periodMs ≥
 * keepAliveMs` have passed since its write, and at most `dueTicks × periodMs`.
 */

/** What the wheel needs of a stream: its place in a bucket, and a heartbeat. */
export interface KeepAliveMember {
  /** The tick count at its last write. */
  lastWriteTick: number;
  /** Its bucket, -1 when it is in none; `PROCESSING` while its bucket is being walked. */
  wheelSlot: number;
  /** Its index in that bucket. */
  wheelIndex: number;
  /** Called when `keepAliveMs` passed without a write. It may close the member. */
  heartbeat(): void;
}

const PROCESSING = -2;
/**
 * Heartbeats written in one pass before the walk yields a turn: some 10 ms of writes. Streams
 * opened together are due together, and 19,000 heartbeats at once would hold the event loop for
 * 200 ms: connections waiting in the accept queue, past its length, would lose their SYN and
 * come back on TCP's schedule, a second or more later.
 */
const HEARTBEATS_PER_PASS = 1000;

export class KeepAliveWheel {
  /** Ticks so far: the clock that writes read. */
  tick = 0;
  readonly periodMs: number;
  private readonly dueTicks: number;
  private readonly buckets: KeepAliveMember[][];
  private members = 0;
  private timer: ReturnType<typeof setInterval> | undefined = undefined;

  constructor(readonly keepAliveMs: number) {
    // Rounded up, so that keepAliveMs takes at most five ticks: dueTicks is then at most 6.
    this.periodMs = Math.ceil(keepAliveMs / 5);
    this.dueTicks = Math.ceil(keepAliveMs / this.periodMs) + 1;
    this.buckets = Array.from({ length: this.dueTicks + 1 }, () => []);
  }

  /** Starts the keep-alive of a stream that just wrote (its head). */
  add(member: KeepAliveMember): void {
    member.lastWriteTick = this.tick;
    this.place(member, this.tick + this.dueTicks);
    this.members++;
    if (this.timer === undefined) {
      const timer = (this.timer = setInterval(advance, this.periodMs, this));
      // Node and Bun only: heartbeats alone must not keep a process alive. Elsewhere timers are
      // plain numbers, and the wheel stops with its last stream anyway.
      (timer as { unref?: () => void }).unref?.();
    }
  }

  remove(member: KeepAliveMember): void {
    const slot = member.wheelSlot;
    if (slot === -1) return;
    member.wheelSlot = -1;
    // A member of the bucket being walked is skipped by the walk, which sees its slot.
    if (slot !== PROCESSING) {
      // Swap-remove: the last member of the bucket takes the leaver's place.
      const bucket = this.buckets[slot]!;
      const last = bucket.pop()!;
      if (last !== member) {
        bucket[member.wheelIndex] = last;
        last.wheelIndex = member.wheelIndex;
      }
    }
    this.members--;
  }

  /** One tick: every member of this tick's bucket either gets its heartbeat or moves on to when it is due. */
  advance(): void {
    // Stopped here rather than when the last member leaves: streams that come and go one at a
    // time would otherwise make and clear a timer each.
    if (this.members === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
      return;
    }
    const tick = ++this.tick;
    const index = tick % this.buckets.length;
    const bucket = this.buckets[index]!;
    if (bucket.length === 0) return;
    // Walked apart from the buckets, so that members placed during the walk land in a fresh one.
    this.buckets[index] = [];
    for (const member of bucket) member.wheelSlot = PROCESSING;
    this.walk(bucket, 0);
  }

  /** Walks `bucket` from `start`, yielding a turn after every {@link HEARTBEATS_PER_PASS} heartbeats. */
  walk(bucket: KeepAliveMember[], start: number): void {
    // The tick now, which a walk resumed after a yield may find past the one it started in.
    const tick = this.tick;
    let heartbeats = 0;
    for (let i = start; i < bucket.length; i++) {
      const member = bucket[i]!;
      if (member.wheelSlot !== PROCESSING) continue; // it left during the walk
      const due = member.lastWriteTick + this.dueTicks;
      if (due > tick) {
        this.place(member, due);
        continue;
      }
      if (heartbeats === HEARTBEATS_PER_PASS) {
        // A timer, not setImmediate: core runs where there is none.
        setTimeout(walkOn, 0, this, bucket, i);
        return;
      }
      heartbeats++;
      member.heartbeat();
      // A heartbeat that closed the stream took it out of the wheel.
      if (member.wheelSlot !== PROCESSING) continue;
      member.lastWriteTick = tick;
      this.place(member, tick + this.dueTicks);
    }
  }

  private place(member: KeepAliveMember, dueTick: number): void {
    const slot = dueTick % this.buckets.length;
    const bucket = this.buckets[slot]!;
    member.wheelSlot = slot;
    member.wheelIndex = bucket.push(member) - 1;
  }
}

function advance(wheel: KeepAliveWheel): void {
  wheel.advance();
}

function walkOn(wheel: KeepAliveWheel, bucket: KeepAliveMember[], start: number): void {
  wheel.walk(bucket, start);
}

const wheels = new Map<number, KeepAliveWheel>();

/** The process's wheel for `keepAliveMs`: one timer for every stream with that period. */
export function keepAliveWheel(keepAliveMs: number): KeepAliveWheel {
  let wheel = wheels.get(keepAliveMs);
  if (!wheel) wheels.set(keepAliveMs, (wheel = new KeepAliveWheel(keepAliveMs)));
  return wheel;
}
