// Token buckets: a rate limit that lets a burst through after a quiet spell and
// a steady rate after that. A bucket holds at most `burst` tokens, gains
// `perSecond` of them each second, and each event allowed takes one; a bucket
// starts full. `TokenBucket` is one bucket; `KeyedTokenBuckets` is one per key
// (a source address, say) in a table of bounded size kept in order of last use.
// The clock is injectable so that tests can step time instead of waiting.

export interface TokenRate {
  /** tokens added per second: the sustained rate */
  perSecond: number;
  /** bucket size: how many events may go at once after a quiet spell */
  burst: number;
}

export interface KeyedTokenRate extends TokenRate {
  /** keys with a bucket at once; a new key past it makes the least recently used one be forgotten */
  maxKeys: number;
}

export interface KeyedTokenBucketStats {
  /** keys in the table now */
  keys: number;
  /** takes refused because their key's bucket was empty */
  refused: number;
  /** keys dropped from a full table to make room for a new one */
  evicted: number;
}

/** Milliseconds since some fixed point; `Date.now` unless a test steps its own. */
export type Clock = () => number;

interface BucketState {
  tokens: number;
  atMs: number;
}

function checkRate(rate: TokenRate): void {
  if (!(rate.perSecond > 0) || !(rate.burst >= 1)) {
    throw new RangeError(`token bucket needs perSecond > 0 and burst >= 1 (got ${JSON.stringify(rate)})`);
  }
}

/** The tokens `b` holds at `nowMs`: what it held plus what it earned since, up to the burst. */
function tokensAt(b: BucketState, rate: TokenRate, nowMs: number): number {
  // a clock stepping back adds nothing (and takes nothing away)
  return Math.min(rate.burst, b.tokens + (Math.max(0, nowMs - b.atMs) * rate.perSecond) / 1000);
}

/** Brings `b` up to `nowMs` and takes a token if it holds one. */
function takeFrom(b: BucketState, rate: TokenRate, nowMs: number): boolean {
  b.tokens = tokensAt(b, rate, nowMs);
  b.atMs = nowMs;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

/** Milliseconds until a bucket holding `tokens` holds a whole one: 0 if it does now. */
function msUntilWhole(tokens: number, rate: TokenRate): number {
  return tokens >= 1 ? 0 : Math.ceil(((1 - tokens) * 1000) / rate.perSecond);
}

/** One token bucket. */
export class TokenBucket {
  private readonly b: BucketState;

  constructor(
    private readonly rate: TokenRate,
    private readonly now: Clock = Date.now,
  ) {
    checkRate(rate);
    this.b = { tokens: rate.burst, atMs: now() };
  }

  /** Takes a token if the bucket holds one now; false (and nothing taken) if not. */
  take(): boolean {
    return takeFrom(this.b, this.rate, this.now());
  }

  /** Milliseconds until the bucket holds a token: 0 if it does now. Takes nothing. */
  msUntilToken(): number {
    return msUntilWhole(tokensAt(this.b, this.rate, this.now()), this.rate);
  }
}

/**
 * A token bucket per key, in a table of at most `maxKeys` buckets. The table's
 * order is the order of last use: when it is full, a new key makes the key
 * used least recently be forgotten (its bucket had the longest to refill, so
 * forgetting it gives away the least); a forgotten key comes back with a full bucket.
 */
export class KeyedTokenBuckets {
  /** insertion order is recency order: a key is re-inserted each time it is taken from */
  private readonly buckets = new Map<string, BucketState>();
  private refused = 0;
  private evicted = 0;

  constructor(
    private readonly rate: KeyedTokenRate,
    private readonly now: Clock = Date.now,
  ) {
    checkRate(rate);
    if (!(rate.maxKeys >= 1)) throw new RangeError(`keyed token buckets need maxKeys >= 1 (got ${JSON.stringify(rate)})`);
  }

  /** Keys with a bucket now (at most `maxKeys`). */
  get size(): number {
    return this.buckets.size;
  }

  /** Takes a token from `key`'s bucket if it holds one now; false (and nothing taken) if not. */
  take(key: string): boolean {
    const now = this.now();
    let b = this.buckets.get(key);
    if (b) {
      this.buckets.delete(key); // re-inserted below: the map's order is the order of last use
    } else {
      if (this.buckets.size >= this.rate.maxKeys) {
        this.buckets.delete(this.buckets.keys().next().value!);
        this.evicted++;
      }
      b = { tokens: this.rate.burst, atMs: now };
    }
    this.buckets.set(key, b);
    if (takeFrom(b, this.rate, now)) return true;
    this.refused++;
    return false;
  }

  /** Milliseconds until `key`'s bucket holds a token: 0 if it does now (or `key` has none: it would start full). Takes nothing, moves nothing. */
  msUntilToken(key: string): number {
    const b = this.buckets.get(key);
    return b ? msUntilWhole(tokensAt(b, this.rate, this.now()), this.rate) : 0;
  }

  stats(): KeyedTokenBucketStats {
    return { keys: this.buckets.size, refused: this.refused, evicted: this.evicted };
  }
}
