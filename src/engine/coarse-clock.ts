// A clock for per-packet decisions that need time only to a fraction of a
// second: it is read for the first packet after a quiet spell and then once
// per CLOCK_TICK_MS on a timer that runs only while packets come. Reading the
// system clock costs ~50 ns and, where the reading crosses a call, a 16-byte
// number; per packet that is as much as a flow-table hit or a timer re-arm.
// The reading is a field (`ms`), not a return value, so a caller that reads it
// in optimised code boxes nothing.
import type { Clock } from './clock.js';

/**
 * How old `ms` may be while packets flow (plus the event loop's own lateness in running the tick). 250 ms is 1/120 of
 * the access filter's shortest timeout (30 s) and 1/40 of WireGuard's shortest per-packet timer (KEEPALIVE_TIMEOUT,
 * 10 s); four wake-ups a second cost nothing beside a stream's packets, and an idle node has none.
 */
export const CLOCK_TICK_MS = 250;

export class CoarseClock {
  /** monotonic milliseconds, at most CLOCK_TICK_MS old after `stamp()` */
  ms = 0;
  /** a tick is pending: `ms` is at most CLOCK_TICK_MS old */
  private ticking = false;
  /** `ms` was used since the last tick */
  private used = false;

  constructor(private readonly clock: Clock) {}

  /** Brings `ms` up to date for a packet: the clock itself after a quiet spell, else the last tick's reading. */
  stamp(): void {
    if (this.ticking) {
      this.used = true;
      return;
    }
    this.ms = this.clock.now();
    this.ticking = true;
    this.clock.setTimeout(this.tick, CLOCK_TICK_MS);
  }

  /** Reads the clock for the packets to come, and ticks again only if packets came since the last tick. */
  private readonly tick = (): void => {
    if (!this.used) {
      this.ticking = false;
      return;
    }
    this.used = false;
    this.ms = this.clock.now();
    this.clock.setTimeout(this.tick, CLOCK_TICK_MS);
  };
}
