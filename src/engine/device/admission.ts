// Whether the device spends a Diffie-Hellman on a handshake message
// (whitepaper §5.3, wireguard-go's receive.go): MAC1 always; once the device
// is under load (more than a threshold of handshakes in a second, and for
// UNDER_LOAD_AFTER_MS after), MAC2 too, answered with a cookie reply when it
// is missing, and then a per-source rate limit.
import type { Clock } from '../clock.js';
import type { NetBind } from '../conn/bind.js';
import type { Endpoint } from '../conn/endpoint.js';
import { UNDER_LOAD_AFTER_MS } from './constants.js';
import { CookieChecker } from './cookie.js';
import { sendCounted } from './peer-send.js';
import { HandshakeRateLimiter } from './ratelimit.js';
import type { EngineStats } from './stats.js';

/** What admission needs from its device: the counters, the clock, and the bind a cookie reply leaves through. */
export interface AdmissionHost {
  readonly clock: Clock;
  readonly stats: EngineStats;
  readonly bind: NetBind | null;
}

export class HandshakeAdmission {
  private cookieChecker: CookieChecker | null = null;
  private readonly rateLimiter: HandshakeRateLimiter;
  private handshakeWindowStartMs = 0;
  private handshakesInWindow = 0;
  private underLoadUntilMs = -Infinity;

  constructor(
    private readonly host: AdmissionHost,
    /** handshakes per second beyond which MAC2 cookies are required */
    private readonly underLoadThreshold: number,
  ) {
    this.rateLimiter = new HandshakeRateLimiter(() => host.clock.now());
  }

  /** Our static public key (MAC1 and cookies are keyed by it); null: no private key, every handshake is refused. */
  setPublicKey(publicKey: Buffer | null): void {
    this.cookieChecker = publicKey ? new CookieChecker(publicKey, () => this.host.clock.now()) : null;
  }

  /** MAC1 always; under load MAC2 too, answering with a cookie reply when it is missing. */
  admit(buf: Buffer, mac1: number, mac2: number, senderIndex: number, src: Endpoint): boolean {
    const cc = this.cookieChecker;
    const stats = this.host.stats;
    if (!cc?.checkMac1(buf, mac1)) {
      stats.dropped.badMac1++;
      return false;
    }
    if (!this.underLoad()) return true;
    if (!cc.checkMac2(buf, mac2, src)) {
      stats.dropped.cookieRequired++;
      sendCounted(this.host.bind, stats, cc.createReply(buf, mac1, senderIndex, src), src);
      return false;
    }
    if (!this.rateLimiter.allow(src.address)) {
      stats.dropped.rateLimited++;
      return false;
    }
    return true;
  }

  private underLoad(): boolean {
    const now = this.host.clock.now();
    if (now - this.handshakeWindowStartMs >= 1000) {
      this.handshakeWindowStartMs = now;
      this.handshakesInWindow = 0;
    }
    if (++this.handshakesInWindow > this.underLoadThreshold) this.underLoadUntilMs = now + UNDER_LOAD_AFTER_MS;
    return now < this.underLoadUntilMs;
  }
}
