// Time as the engine sees it, injectable so timer tests run on a fake clock.
// Engine timers re-arm on almost every packet; `LazyTimer` makes that a field
// write instead of a clearTimeout/setTimeout pair per packet.

export interface Clock {
  /** monotonic milliseconds */
  now(): number;
  /** wall-clock milliseconds since 1970 (TAI64N timestamps, last-handshake time) */
  wallNow(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** What a timer re-armed per packet reads instead of the clock (coarse-clock.ts). */
export interface CoarseTime {
  ms: number;
  stamp(): void;
}

/** A one-shot timer whose deadline can move often and cheaply. */
export class LazyTimer {
  private deadline = 0;
  private armed = false;
  private handle: unknown = null;
  private handleFiresAt = Infinity;

  constructor(
    private readonly clock: Clock,
    private readonly onFire: () => void,
    /**
     * Where `mod` reads the time, if given: a reading up to CLOCK_TICK_MS old, so the deadline may be that much early.
     * Firing and rescheduling read `clock` itself.
     */
    private readonly coarse: CoarseTime | null = null,
  ) {}

  get pending(): boolean {
    return this.armed;
  }

  /** (Re)arms the timer to fire `ms` from now. */
  mod(ms: number): void {
    const c = this.coarse;
    if (c !== null) {
      c.stamp();
      this.deadline = c.ms + ms;
    } else this.deadline = this.clock.now() + ms;
    this.armed = true;
    if (this.handle !== null && this.handleFiresAt <= this.deadline) return;
    this.schedule();
  }

  del(): void {
    this.armed = false;
  }

  stop(): void {
    this.armed = false;
    if (this.handle !== null) this.clock.clearTimeout(this.handle);
    this.handle = null;
    this.handleFiresAt = Infinity;
  }

  private schedule(): void {
    if (this.handle !== null) this.clock.clearTimeout(this.handle);
    const wait = Math.max(0, this.deadline - this.clock.now());
    this.handleFiresAt = this.deadline;
    this.handle = this.clock.setTimeout(() => this.fire(), wait);
  }

  private fire(): void {
    this.handle = null;
    this.handleFiresAt = Infinity;
    if (!this.armed) return;
    if (this.clock.now() < this.deadline - 0.5) {
      this.schedule();
      return;
    }
    this.armed = false;
    this.onFire();
  }
}

/** A manual clock for tests: time moves only when `advance` is called. */
export class FakeClock implements Clock {
  private t = 0;
  private wall = 1_700_000_000_000;
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.t;
  }
  wallNow(): number {
    return this.wall + this.t;
  }
  /** Steps the wall clock (as NTP or a hand set clock does) without moving monotonic time or firing timers. */
  stepWall(ms: number): void {
    this.wall += ms;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  /** Moves time forward, firing due timers in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
    }
    this.t = end;
  }
}
