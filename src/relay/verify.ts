// --verify-clients: ask the control server whether a node key belongs to the
// network before relaying for it, with no local daemon needed. Answers are
// cached briefly (a bounded cache) so a reconnect storm does not become a storm
// on control, and lookups are rate-limited both in flight and per second: a
// lookup that cannot be made now waits in a bounded queue for a bounded time,
// or is answered `busy` and the client is refused.
import { readFileSync } from '../util/cjs.js';
import { request } from 'node:https';
import { X509Certificate } from 'node:crypto';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { keyToText } from '../crypto/keys.js';
import { TokenBucket } from '../util/token-bucket.js';

/** How long a known/unknown answer is reused: a deleted node may keep its place this long after a lookup. */
export const VERIFY_CACHE_MS = 30_000;
/** Cached answers kept at most: ~100 bytes each, so ~1 MiB; the oldest is evicted first. */
export const VERIFY_CACHE_MAX_ENTRIES = 10_000;
/** A lookup control has not answered by then counts as an error (the client is refused, not waited on). */
export const VERIFY_TIMEOUT_MS = 5000;
/** Lookups to control in flight at once: enough for a reconnect storm, few enough not to flood control. */
export const VERIFY_MAX_IN_FLIGHT = 16;
/** Lookups started per second (token bucket, one second of burst): a relay restart with 1000 nodes is admitted in ~20 s. */
export const VERIFY_LOOKUPS_PER_SEC = 50;
/** Lookups waiting for a slot at most; beyond it a lookup is answered `busy` at once. */
export const VERIFY_QUEUE_MAX = 256;
/** How long a lookup waits for a slot: under the relay's 5 s handshake timeout. */
export const VERIFY_QUEUE_WAIT_MS = 2000;

export type Verdict = 'known' | 'unknown' | 'error' | 'busy';

export interface ClientVerifierOptions {
  url: string;
  /** the control server's certificate (PEM file), pinned */
  caFile?: string;
  cacheMs?: number;
  cacheMaxEntries?: number;
  timeoutMs?: number;
  maxInFlight?: number;
  lookupsPerSec?: number;
  queueMax?: number;
  queueWaitMs?: number;
  /** the clock of the cache and the lookup rate (tests step it by hand) */
  now?: () => number;
}

interface Waiter {
  start: () => void;
  timer: NodeJS.Timeout;
}

export class ClientVerifier {
  private readonly cache = new Map<string, { known: boolean; untilMs: number }>();
  /** one lookup per key at a time: concurrent callers share it */
  private readonly pending = new Map<string, Promise<Verdict>>();
  private readonly queue: Waiter[] = [];
  private inFlight = 0;
  private readonly rate: TokenBucket;
  private refillTimer: NodeJS.Timeout | null = null;
  private readonly caPem: string | null;
  private readonly pinned: X509Certificate | null;
  private readonly o: Required<Omit<ClientVerifierOptions, 'caFile' | 'now'>>;
  private readonly now: () => number;
  readonly stats = { lookups: 0, cacheHits: 0, busy: 0, errors: 0, evicted: 0 };

  constructor(opts: ClientVerifierOptions) {
    this.caPem = opts.caFile ? readFileSync(opts.caFile, 'utf8') : null;
    this.pinned = this.caPem ? new X509Certificate(this.caPem) : null;
    this.o = {
      url: opts.url,
      cacheMs: opts.cacheMs ?? VERIFY_CACHE_MS,
      cacheMaxEntries: opts.cacheMaxEntries ?? VERIFY_CACHE_MAX_ENTRIES,
      timeoutMs: opts.timeoutMs ?? VERIFY_TIMEOUT_MS,
      maxInFlight: opts.maxInFlight ?? VERIFY_MAX_IN_FLIGHT,
      lookupsPerSec: opts.lookupsPerSec ?? VERIFY_LOOKUPS_PER_SEC,
      queueMax: opts.queueMax ?? VERIFY_QUEUE_MAX,
      queueWaitMs: opts.queueWaitMs ?? VERIFY_QUEUE_WAIT_MS,
    };
    // monotonic: with the wall clock stepped back, a cached verdict (a deleted node's "known") would outlive its cacheMs by the step
    this.now = opts.now ?? (() => performance.now());
    this.rate = new TokenBucket({ perSecond: this.o.lookupsPerSec, burst: this.o.lookupsPerSec }, this.now);
  }

  get cacheSize(): number {
    return this.cache.size;
  }
  get inFlightCount(): number {
    return this.inFlight;
  }

  /** Compatibility shape: true only for a `known` verdict. */
  async known(nodeKey: Buffer): Promise<boolean> {
    return (await this.check(nodeKey)) === 'known';
  }

  /**
   * The control server's verdict on `nodeKey`: from the cache while fresh, else
   * one lookup. `wait: false` (rechecks) answers `busy` instead of queueing.
   */
  check(nodeKey: Buffer, opts: { wait?: boolean } = {}): Promise<Verdict> {
    const k = keyToText(nodeKey);
    const c = this.cache.get(k);
    if (c && c.untilMs > this.now()) {
      this.stats.cacheHits++;
      return Promise.resolve(c.known ? 'known' : 'unknown');
    }
    if (c) this.cache.delete(k);
    const shared = this.pending.get(k);
    if (shared) return shared;
    const p = this.lookup(k, opts.wait !== false).finally(() => this.pending.delete(k));
    this.pending.set(k, p);
    return p;
  }

  stop(): void {
    if (this.refillTimer) clearTimeout(this.refillTimer);
    this.refillTimer = null;
    for (const w of this.queue.splice(0)) clearTimeout(w.timer);
  }

  private async lookup(k: string, wait: boolean): Promise<Verdict> {
    if (!this.takeSlot()) {
      if (!wait || this.queue.length >= this.o.queueMax) {
        this.stats.busy++;
        return 'busy';
      }
      const got = await new Promise<boolean>((resolve) => {
        const w: Waiter = {
          start: () => (clearTimeout(w.timer), resolve(true)),
          timer: setTimeout(() => {
            const i = this.queue.indexOf(w);
            if (i >= 0) this.queue.splice(i, 1);
            resolve(false);
          }, this.o.queueWaitMs),
        };
        this.queue.push(w);
        this.scheduleRefill();
      });
      if (!got) {
        this.stats.busy++;
        return 'busy';
      }
    }
    this.stats.lookups++;
    try {
      const known = await this.ask(k);
      this.remember(k, known);
      return known ? 'known' : 'unknown';
    } catch {
      // not cached: the next attempt asks again (within the rate limit)
      this.stats.errors++;
      return 'error';
    } finally {
      this.inFlight--;
      this.drain();
    }
  }

  /** Takes an in-flight slot and a rate token if both are free now. */
  private takeSlot(): boolean {
    if (this.inFlight >= this.o.maxInFlight || !this.rate.take()) return false;
    this.inFlight++;
    return true;
  }

  private drain(): void {
    while (this.queue.length && this.takeSlot()) this.queue.shift()!.start();
    this.scheduleRefill();
  }

  /** Waiters blocked on the rate (not on in-flight slots) are started when a token is due. */
  private scheduleRefill(): void {
    if (this.refillTimer || !this.queue.length) return;
    const dueMs = Math.max(1, this.rate.msUntilToken());
    this.refillTimer = setTimeout(() => {
      this.refillTimer = null;
      this.drain();
    }, dueMs);
    this.refillTimer.unref();
  }

  private remember(k: string, known: boolean): void {
    this.cache.delete(k);
    while (this.cache.size >= this.o.cacheMaxEntries) {
      // Map order is insertion order: the first entry is the oldest answer
      this.cache.delete(this.cache.keys().next().value!);
      this.stats.evicted++;
    }
    this.cache.set(k, { known, untilMs: this.now() + this.o.cacheMs });
  }

  /** One lookup: 200 = known, 404 = unknown, anything else (or no answer in time) throws. */
  private ask(key: string): Promise<boolean> {
    const u = new URL(`/meshctl/v1/verify?nodeKey=${encodeURIComponent(key)}`, this.o.url);
    const pinned = this.pinned;
    return new Promise((resolve, reject) => {
      const req = request(
        u,
        {
          timeout: this.o.timeoutMs,
          ...(this.caPem
            ? {
                ca: this.caPem,
                checkServerIdentity: (h: string, cert: PeerCertificate) =>
                  pinned && cert.raw && pinned.raw.equals(cert.raw) ? undefined : checkServerIdentity(h, cert),
              }
            : {}),
        },
        (res) => {
          res.resume();
          if (res.statusCode === 200) resolve(true);
          else if (res.statusCode === 404) resolve(false);
          else reject(new Error(`verify: HTTP ${res.statusCode}`));
        },
      );
      // `timeout` is idle time on the socket; this bounds the whole lookup
      const whole = setTimeout(() => req.destroy(new Error('timeout')), this.o.timeoutMs);
      req.on('close', () => clearTimeout(whole));
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end();
    });
  }
}
