// The STUN server beside every relay: answers binding requests with the
// address and port each request came from. Anything else is counted and dropped.
// UDP sources can be forged and an answer is about twice its request, so
// answers are rate-limited per source (a token bucket per IPv4 address or IPv6
// /64, in a bounded map) and in total: the server cannot be aimed at a victim
// as an amplifier.
import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import { bindingResponse, parseStun } from '../nat/stun.js';
import { sourceKey } from '../util/per-source.js';
import { KeyedTokenBuckets, TokenBucket } from '../util/token-bucket.js';

/**
 * Answers per second to one source. A netcheck sends 3 per region; this leaves
 * room for a dozen nodes behind one NAT checking at once, and caps what a
 * forged source can aim at one victim at ~1 KB/s (answers are 40-52 bytes).
 */
export const STUN_ANSWERS_PER_SEC_PER_SOURCE = 20;
/** Burst per source: two seconds' worth, for netchecks of several nodes behind one address at the same moment. */
export const STUN_BURST_PER_SOURCE = 40;
/** Sources tracked at once (~100 bytes each: ~1 MiB); past it the least recently seen is forgotten. */
export const STUN_MAX_SOURCES = 10_000;
/** Answers per second in all: ~0.5 MB/s of answers at most, whatever the sources claim to be. */
export const STUN_ANSWERS_PER_SEC_TOTAL = 10_000;

export interface StunLimits {
  perSourcePerSec?: number;
  perSourceBurst?: number;
  maxSources?: number;
  totalPerSec?: number;
}

export class StunServer {
  private sock: dgram.Socket | null = null;
  readonly stats = { requests: 0, malformed: 0, rateLimited: 0 };
  port = 0;
  private readonly perSource: KeyedTokenBuckets;
  private readonly total: TokenBucket;

  constructor(
    private readonly host: string,
    private readonly wantPort: number,
    limits: StunLimits = {},
  ) {
    this.perSource = new KeyedTokenBuckets({
      perSecond: limits.perSourcePerSec ?? STUN_ANSWERS_PER_SEC_PER_SOURCE,
      burst: limits.perSourceBurst ?? STUN_BURST_PER_SOURCE,
      maxKeys: limits.maxSources ?? STUN_MAX_SOURCES,
    });
    const totalPerSec = limits.totalPerSec ?? STUN_ANSWERS_PER_SEC_TOTAL;
    this.total = new TokenBucket({ perSecond: totalPerSec, burst: totalPerSec });
  }

  /** Sources with a bucket now (at most the map's bound). */
  get trackedSources(): number {
    return this.perSource.size;
  }

  /** An answer needs a token from the total and from its source; the total's is taken only if the source's was, so one source's refusals cost no one else. */
  private allow(address: string): boolean {
    if (this.total.msUntilToken() > 0) return false;
    if (!this.perSource.take(sourceKey(address))) return false;
    return this.total.take();
  }

  async start(): Promise<void> {
    const type = isIPv6(this.host) ? 'udp6' : 'udp4';
    const s = dgram.createSocket({ type, reuseAddr: false });
    s.on('message', (msg, rinfo) => {
      const m = parseStun(msg);
      if (m?.kind !== 'request') {
        this.stats.malformed++;
        return;
      }
      this.stats.requests++;
      const address = rinfo.address.replace(/^::ffff:/, '');
      if (!this.allow(address)) {
        this.stats.rateLimited++;
        return;
      }
      s.send(bindingResponse(m.txid, { address, port: rinfo.port }), rinfo.port, rinfo.address);
    });
    s.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(this.wantPort, this.host === '0.0.0.0' || this.host === '::' ? undefined : this.host, () => resolve());
    });
    this.sock = s;
    this.port = s.address().port;
  }

  async stop(): Promise<void> {
    const s = this.sock;
    this.sock = null;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}
