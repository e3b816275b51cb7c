// Per-source request rates for the control server: a token bucket per source
// (an IPv4 address or an IPv6 /64, as connections.ts groups them), checked
// before a request costs any crypto or database work. The table of buckets is
// bounded; when it is full the source seen least recently is forgotten (its
// bucket had the longest to refill, so forgetting it gives away the least).
import { KeyedTokenBuckets, type Clock } from '../util/token-bucket.js';

/**
 * Sealed requests (register, map, endpoints, logout) one source may keep up,
 * per second. A node sends a handful a minute (a map stream per reconnect, an
 * endpoint update per change), so this is ~6 a minute for each of 200 nodes
 * behind one NAT, while one host flooding from one address is held to what
 * costs the server about a tenth of a core (a sealed request costs 3-6 ms:
 * X25519 and the box ~2.5 ms for a key not seen lately, a database write ~3.5 ms).
 */
export const SEALED_REQUESTS_PER_SEC_PER_SOURCE = 20;
/**
 * Sealed requests one source may send at once: an office of 200 nodes behind
 * one NAT restarting together sends a registration or map request each plus an
 * endpoint update or two (~3 each); what does not fit is refused with
 * Retry-After and retried by the node's backoff, while the bucket refills.
 */
export const SEALED_BURST_PER_SOURCE = 600;
/**
 * /verify lookups one source may make per second. Relays ask on a client's
 * first connection and recheck later, limit themselves to 50 a second and
 * cache answers for 30 s (relay/verify.ts); this lets four relays behind one
 * address ask at full speed. A lookup is an indexed read, no crypto and no
 * write, so it has a bucket of its own: relays and nodes behind one address do
 * not use up each other's allowance.
 */
export const VERIFY_REQUESTS_PER_SEC_PER_SOURCE = 200;
/** /verify lookups one source may make at once: one second's worth. */
export const VERIFY_BURST_PER_SOURCE = 200;
/**
 * Sources whose buckets are kept, per bucket kind: ~100 bytes each, so ~1 MB.
 * A dropped source comes back with a full bucket, but the least recently seen
 * one is dropped, and a sealed bucket refills completely in 30 s (600 / 20):
 * giving a flood anything back this way takes more than 10 000 / 30 ≈ 330
 * new sources a second.
 */
export const MAX_RATE_LIMITED_SOURCES = 10_000;

export interface RateLimit {
  /** tokens added per second: the sustained rate one source may keep up */
  perSecond: number;
  /** bucket size: how many requests one source may send at once after a quiet spell */
  burst: number;
  /** sources tracked at once; beyond it the least recently seen is dropped */
  maxSources: number;
}

export interface RateLimiterStats {
  /** sources in the table now */
  sources: number;
  /** requests refused because their source's bucket was empty */
  refused: number;
  /** sources dropped from a full table */
  evicted: number;
}

export class SourceRateLimiter {
  private readonly buckets: KeyedTokenBuckets;

  constructor(limit: RateLimit, now: Clock = Date.now) {
    this.buckets = new KeyedTokenBuckets({ perSecond: limit.perSecond, burst: limit.burst, maxKeys: limit.maxSources }, now);
  }

  /**
   * Takes one token from `source`'s bucket. Returns 0 when the request may go
   * ahead, else how many milliseconds until the bucket holds a token again.
   */
  take(source: string): number {
    return this.buckets.take(source) ? 0 : this.buckets.msUntilToken(source);
  }

  stats(): RateLimiterStats {
    const s = this.buckets.stats();
    return { sources: s.keys, refused: s.refused, evicted: s.evicted };
  }
}
