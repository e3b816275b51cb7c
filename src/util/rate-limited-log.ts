// One log line per interval for an event that can repeat thousands of times a
// second (a full fd table failing every accept, a user hammering a socket):
// the first occurrence is logged at once, later ones within the interval are
// counted and the count is reported with the next line that gets through.
// The interval is measured on the monotonic clock: a wall clock stepped back would silence the event for the step.

export type RateLimitedLog = (msg: string) => void;

export function rateLimitedLog(log: (msg: string) => void, intervalMs: number, now: () => number = () => performance.now()): RateLimitedLog {
  let last = -Infinity;
  let suppressed = 0;
  return (msg) => {
    const t = now();
    if (t - last < intervalMs) {
      suppressed++;
      return;
    }
    last = t;
    log(suppressed > 0 ? `${msg} (${suppressed} more like it since the last report)` : msg);
    suppressed = 0;
  };
}
