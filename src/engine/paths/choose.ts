// Which path carries a peer's packets: the best direct candidate while its
// pongs are recent (trusted), else the peer's home relay when connected, else
// a direct guess. A new direct path replaces a trusted one only when clearly
// faster (hysteresis), or at once when the trusted one is suspect (a ping to
// it unanswered past a few round trips); when trust runs out traffic lapses
// to the relay.
import type { Clock } from '../clock.js';
import type { Endpoint } from '../conn/endpoint.js';
import type { Device } from '../device/device.js';
import { LOST_PING_RTT_FACTOR, type Candidate, type PathInfo, type PathTimers, type PeerPaths, type RelayPaths } from './types.js';

/** A new direct path must beat the current one by this fraction and by at least 1 ms, so equal paths do not flap. */
const SWITCH_BETTER_FRACTION = 0.2;
const SWITCH_BETTER_MIN_MS = 1;
/**
 * An initiation that arrived is answered within about one round trip of the way it took: a resend on a way that opens
 * meanwhile waits this many round trips of that way, when measured (at least PATH_OPENED_ELSEWHERE_MIN_MS), so the
 * answer is not lost to the resend replacing its index. 1.5: room for the peer's Diffie-Hellman and jitter.
 */
const ANSWER_WAIT_RTTS = 1.5;

export class PathChoice {
  constructor(
    private readonly clock: Clock,
    private readonly timers: PathTimers,
    /** whose peers get `pathOpened` when a direct path is found, and whose byte counters tell activity */
    private readonly device: Device,
    private readonly relay: RelayPaths | undefined,
    private readonly onPathChange: ((nodeKey: Buffer, path: PathInfo) => void) | undefined,
  ) {}

  /** a pong came back within the trust window */
  trusted(c: Candidate | null): boolean {
    return c?.lastPongMs != null && this.clock.now() - c.lastPongMs <= this.timers.trustMs;
  }

  /** How long a ping to `c` may go unanswered before the path is suspect: lostPingMs, or a few of its round trips. */
  lostAfterMs(c: Candidate): number {
    return Math.max(this.timers.lostPingMs, LOST_PING_RTT_FACTOR * (c.latencyMs ?? 0));
  }

  /** A ping to `c` has gone unanswered past lostAfterMs: the path may have died since its last pong. */
  suspect(c: Candidate): boolean {
    return c.unansweredSinceMs !== null && this.clock.now() - c.unansweredSinceMs >= this.lostAfterMs(c);
  }

  /** Trusted and not suspect: the path carries the peer's traffic alone. */
  confirmed(c: Candidate | null): boolean {
    return c !== null && this.trusted(c) && !this.suspect(c);
  }

  /** the peer's home relay region when it is connected */
  relayUsable(p: PeerPaths): string | null {
    return p.homeRelay && this.relay?.connected(p.homeRelay) ? p.homeRelay : null;
  }

  /** The trusted direct endpoint that is not suspect, or null (relay, both, guesses). */
  direct(p: PeerPaths): Endpoint | null {
    return this.confirmed(p.best) ? p.best!.ep : null;
  }

  /** With neither a trusted direct path nor a relay: the last good direct path, or the first candidate. */
  guess(p: PeerPaths): Candidate | null {
    return p.best ?? (p.candidates.size ? p.candidates.values().next().value! : null);
  }

  /**
   * A pong proved `c`: it becomes the path if there is no trusted one, the trusted one is suspect (another candidate
   * answers while it does not: the peer's NAT gave it a new mapping), or it is clearly faster. `prevPongMs`: c's
   * last pong before this one, so a heartbeat's pong on a path that stayed trusted is no change (no log line, no
   * handshake resent each beat).
   */
  consider(p: PeerPaths, c: Candidate, prevPongMs: number | null): void {
    const best = p.best;
    const wasTrusted = best === c ? prevPongMs !== null && this.clock.now() - prevPongMs <= this.timers.trustMs : this.confirmed(best);
    const better =
      !best ||
      best === c ||
      !wasTrusted ||
      (best.latencyMs !== null &&
        c.latencyMs !== null &&
        best.latencyMs - c.latencyMs > Math.max(SWITCH_BETTER_MIN_MS, best.latencyMs * SWITCH_BETTER_FRACTION));
    if (!better) return;
    // a change is a new candidate, or a trusted path again after a lapse: not every pong on the path in use (each
    // would report it anew and resend a pending handshake initiation, whose answer then finds its index replaced)
    const changed = best !== c || !wasTrusted;
    p.best = c;
    if (changed) {
      this.onPathChange?.(p.nodeKey, this.pathOf(p));
      this.pathOpened(p, c, (c.lastPongMs ?? this.clock.now()) - (c.latencyMs ?? 0));
    }
  }

  /**
   * A way to the peer opened: `way` (a direct candidate a pong proved, or the relay) carries its packets now, and
   * `sinceMs` is when the probe that proved it left (for the relay: when it connected). A pending handshake initiation
   * that took this way at or after then most likely arrived (its answer travels with the probe's) and is left alone.
   * Any other — sent another way, by no way, or this way before it was shown open — may be lost: the relay the peer was
   * not connected to yet (right after its `up`), a NAT or a peer socket not yet open. The device resends it
   * (peer-handshake.ts `pathOpened`: at most one per PATH_OPENED_ELSEWHERE_MIN_MS) once its answer is overdue on the
   * way it took.
   */
  pathOpened(p: PeerPaths, way: Candidate | 'relay', sinceMs: number): void {
    const wg = this.device.getPeer(p.nodeKey);
    if (!wg) return;
    if (p.initiationWay === way && p.initiationMs >= sinceMs) return;
    const took = p.initiationWay;
    const rttMs = took === 'relay' ? p.relayLatencyMs : (took?.latencyMs ?? null);
    wg.pathOpened(rttMs !== null ? ANSWER_WAIT_RTTS * rttMs : 0);
  }

  /** Called each heartbeat while the direct path is not trusted: reports the lapse to the relay on the beat it happens. */
  noteLapse(p: PeerPaths, now: number): void {
    const wasTrusted = p.best !== null && p.best.lastPongMs !== null && now - p.best.lastPongMs - this.timers.heartbeatMs <= this.timers.trustMs;
    if (wasTrusted) this.onPathChange?.(p.nodeKey, this.pathOf(p));
  }

  /** Samples the peer's WireGuard byte counters (each heartbeat); true while it moved a packet within the active window. */
  sampleActivity(p: PeerPaths, now: number): boolean {
    const wg = this.device.getPeer(p.nodeKey);
    const bytes = wg ? wg.txBytes + wg.rxBytes : 0;
    if (bytes !== p.lastActivityBytes) {
      p.lastActivityBytes = bytes;
      p.lastActiveMs = now;
    }
    return now - p.lastActiveMs <= this.timers.activeMs;
  }

  /**
   * Samples the peer's WireGuard byte counters (the silence watch): true when data went to the peer since the last
   * sample and nothing has come from it for silenceMs.
   */
  sampleSilence(p: PeerPaths, now: number): boolean {
    const wg = this.device.getPeer(p.nodeKey);
    if (!wg) return false;
    const s = p.silence;
    const sent = wg.txBytes !== s.txBytes;
    s.txBytes = wg.txBytes;
    if (wg.rxBytes !== s.rxBytes) {
      s.rxBytes = wg.rxBytes;
      s.rxChangedMs = now;
    }
    return sent && now - s.rxChangedMs >= this.timers.silenceMs;
  }

  isActive(p: PeerPaths): boolean {
    return this.clock.now() - p.lastActiveMs <= this.timers.activeMs;
  }

  pathOf(p: PeerPaths): PathInfo {
    if (p.best && this.trusted(p.best)) return { kind: 'direct', endpoint: p.best.ep, latencyMs: p.best.latencyMs, trusted: true };
    // idle with a direct path that answered before: the next packet re-proves it at once (the wake ping)
    if (p.best && !this.isActive(p)) return { kind: 'direct', endpoint: p.best.ep, latencyMs: p.best.latencyMs, trusted: false };
    const region = this.relayUsable(p);
    if (region) return { kind: 'relay', region, latencyMs: p.relayLatencyMs };
    return { kind: 'none' };
  }
}
