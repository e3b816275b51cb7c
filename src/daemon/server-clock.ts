// The control server's time as the node estimates it. Sealed requests carry a
// timestamp the server accepts only within ±2 minutes of its own clock
// (REQUEST_MAX_AGE_MS), so a node whose wall clock is off (no NTP yet, a VM
// restored from a snapshot, a clock stepped by hand) would be locked out. The
// node instead learns the offset from the HTTP `Date` header of each answer
// and stamps its requests with its clock plus that offset.
//
// Trust: the header arrives inside the same TLS connection as the maps (the
// server's certificate pinned or CA-checked), so nobody on the path can change
// it. What a path attacker can do is delay an answer; a sample is taken only
// when the round trip was at most MAX_SAMPLE_RTT_MS, which bounds what a delay
// can skew the estimate by (half the round trip plus the header's one-second
// resolution, ≤ 5.5 s, well inside the 2-minute window). A server (or whoever
// holds its TLS key) can set the offset to anything, but the offset is used
// only for the timestamps of requests to that same server: the worst it can do
// is get this node's requests refused, which it can do anyway. Nothing else on
// the node (certificate checks, key expiry, logs, WireGuard) reads it.

/** Round trips longer than this give no sample: a delayed answer would skew the estimate by half of it. */
export const MAX_SAMPLE_RTT_MS = 10_000;
/**
 * Offsets up to this are the node's clock being right, within what one sample can tell (the header counts whole
 * seconds, plus half a round trip): they are not applied, so a node in sync stamps with its own clock as before.
 */
export const OFFSET_IGNORED_BELOW_MS = 10_000;

export class ServerClock {
  /** server time minus this node's wall clock, ms; 0 until a sample says the clock is off */
  offsetMs = 0;
  /** samples taken (answers with a usable Date header and a short enough round trip) */
  samples = 0;

  constructor(private readonly wallNow: () => number = Date.now) {}

  /** The node's wall clock corrected by the learnt offset: what a sealed request's timestamp is. */
  now(): number {
    return this.wallNow() + this.offsetMs;
  }

  /**
   * Takes one answer's `Date` header. `rttMs` is the round trip measured on the monotonic clock; the wall clock
   * is read now, when the answer's headers arrived. Returns whether the offset changed.
   */
  observe(dateHeader: string | undefined, rttMs: number): boolean {
    if (dateHeader === undefined || dateHeader.length > 64 || !(rttMs >= 0) || rttMs > MAX_SAMPLE_RTT_MS) return false;
    const serverMs = Date.parse(dateHeader);
    if (!Number.isFinite(serverMs)) return false;
    this.samples++;
    // the server wrote the header somewhere in the last round trip, in a second the header rounds down
    const estimate = serverMs + 500 - (this.wallNow() - rttMs / 2);
    const next = Math.abs(estimate) < OFFSET_IGNORED_BELOW_MS ? 0 : Math.round(estimate);
    if (Math.abs(next - this.offsetMs) < OFFSET_IGNORED_BELOW_MS) return false;
    this.offsetMs = next;
    return true;
  }
}
