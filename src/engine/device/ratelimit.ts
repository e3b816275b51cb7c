// Per-source token bucket for handshake messages while under load, so one
// flooding address cannot starve others of handshakes (wireguard-go's
// ratelimiter: 20 per second, burst 5).

const PACKETS_PER_SECOND = 20;
const BURST_PACKETS = 5;
const GC_INTERVAL_MS = 1000;

export class HandshakeRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; atMs: number }>();
  private lastGcMs = 0;

  constructor(private readonly nowMs: () => number) {}

  allow(sourceKey: string): boolean {
    const now = this.nowMs();
    if (now - this.lastGcMs > GC_INTERVAL_MS) this.gc(now);
    const b = this.buckets.get(sourceKey);
    if (!b) {
      this.buckets.set(sourceKey, { tokens: BURST_PACKETS - 1, atMs: now });
      return true;
    }
    b.tokens = Math.min(BURST_PACKETS, b.tokens + ((now - b.atMs) * PACKETS_PER_SECOND) / 1000);
    b.atMs = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  private gc(now: number): void {
    this.lastGcMs = now;
    for (const [k, b] of this.buckets) if (now - b.atMs > GC_INTERVAL_MS) this.buckets.delete(k);
  }
}
