// A peer's side of the Noise IKpsk2 handshake (wireguard-go's
// device/noise-protocol.go for one peer): it sends initiations (at most one per
// REKEY_TIMEOUT), accepts and answers the peer's initiations (fresh timestamp,
// no flood), completes its own, and puts each new keypair in its slot.
import type { Endpoint } from '../conn/endpoint.js';
import { HANDSHAKE_INITIATION_RATE_MS, PATH_OPENED_ELSEWHERE_MIN_MS } from './constants.js';
import { CookieGenerator } from './cookie.js';
import { Keypair } from './keypair.js';
import { encodeInitiation, encodeResponse, INITIATION_MAC1_OFFSET, INITIATION_MAC2_OFFSET, RESPONSE_MAC1_OFFSET, RESPONSE_MAC2_OFFSET } from './messages.js';
import { createInitiation, createResponse, type ConsumedInitiation, type InitiatorState, type TransportKeys } from './noise.js';
import { PeerSend } from './peer-send.js';

type HandshakeState = { kind: 'none' } | { kind: 'initiationSent'; localIndex: number; state: InitiatorState } | { kind: 'initiationConsumed' };

export abstract class PeerHandshake extends PeerSend {
  private handshake: HandshakeState = { kind: 'none' };
  private lastSentHandshakeMs = -Infinity;
  private lastTimestamp: Buffer = Buffer.alloc(12);
  private lastInitiationConsumedMs = -Infinity;
  /** the send time of the initiation a held-back path resend is for */
  private pathResendFor = -Infinity;
  private readonly cookies = new CookieGenerator(this.remote.publicKey, () => this.host.clock.now(), this.host.timers.cookieRefreshTimeMs);

  get cookieGenerator(): CookieGenerator {
    return this.cookies;
  }

  /**
   * Path selection found a way to the peer that the pending initiation did not take, or took before the way was open
   * (path selection, choose.ts `pathOpened`, decides that): the initiation may be lost (a relay the peer was not
   * connected to yet, a NAT not yet open, a peer not yet listening, no way at all), so it is resent on the new way now
   * instead of after REKEY_TIMEOUT (5 s). Not before it is `minAgeMs` old, and never before PATH_OPENED_ELSEWHERE_MIN_MS:
   * a copy reaching the peer inside its flood guard is dropped, and the resend replaces the index the first one's answer
   * needs, so a younger initiation waits on a timer. That also bounds these resends to one per
   * PATH_OPENED_ELSEWHERE_MIN_MS per peer, however often ways open; a usable session needs none.
   */
  pathOpened(minAgeMs = 0): void {
    if (this.handshake.kind !== 'initiationSent') return;
    const kp = this.current;
    if (kp && this.usableForSending(kp)) return;
    const waitMs = Math.max(minAgeMs, PATH_OPENED_ELSEWHERE_MIN_MS) - (this.host.clock.now() - this.lastSentHandshakeMs);
    if (waitMs > 0) {
      this.pathResendFor = this.lastSentHandshakeMs;
      this.timersPathResendIn(waitMs);
      return;
    }
    this.host.stats.handshakes.resentOnPath++;
    this.lastSentHandshakeMs = -Infinity;
    this.sendHandshakeInitiation(true);
  }

  /** The held-back resend is due: unless the handshake completed or another initiation left since (on the ways open then). */
  protected expiredPathResend(): void {
    if (this.lastSentHandshakeMs !== this.pathResendFor) return;
    this.pathOpened();
  }

  sendHandshakeInitiation(isRetry: boolean): void {
    if (!isRetry) this.handshakeAttempts = 0;
    const now = this.host.clock.now();
    if (now - this.lastSentHandshakeMs < this.host.timers.rekeyTimeoutMs) return;
    const id = this.host.identity();
    if (!id || !this.remote.staticStatic) return;
    this.lastSentHandshakeMs = now;
    this.clearHandshake();
    const localIndex = this.host.indices.newIndex(this);
    const { message, state } = createInitiation(id, this.remote, localIndex, this.host.handshakeTimestamps.next());
    this.handshake = { kind: 'initiationSent', localIndex, state };
    this.host.stats.handshakes.initiated++;
    const buf = encodeInitiation(message);
    this.cookies.stamp(buf, INITIATION_MAC1_OFFSET, INITIATION_MAC2_OFFSET);
    this.timersAnyAuthenticatedPacketTraversal();
    this.timersAnyAuthenticatedPacketSent();
    this.timersHandshakeInitiated();
    if (!this.endpoint) return;
    this.sendDatagram(buf, this.endpoint);
  }

  /** Accepts a consumed initiation if its timestamp is fresh and it is not a flood. */
  acceptInitiation(c: ConsumedInitiation): boolean {
    const now = this.host.clock.now();
    if (Buffer.compare(c.timestamp, this.lastTimestamp) <= 0) {
      this.host.stats.dropped.staleTimestamp++;
      return false;
    }
    if (now - this.lastInitiationConsumedMs < HANDSHAKE_INITIATION_RATE_MS) {
      this.host.stats.dropped.handshakeFlood++;
      return false;
    }
    this.lastTimestamp = Buffer.from(c.timestamp);
    this.lastInitiationConsumedMs = now;
    return true;
  }

  /**
   * Answers an accepted initiation; the new keypair waits in `next` until the initiator uses it. Our own pending
   * initiation stays pending: when both sides initiate at once (each had data for the other as a path opened), each
   * answers the other's; dropping ours would drop the answer to it too, and both sides would hold only a responder's
   * keypair, which neither may send on before the other does: nothing until REKEY_TIMEOUT. Kept, the answer completes
   * it and each side sends on the session it initiated, which the other holds as its responder's.
   */
  sendHandshakeResponse(c: ConsumedInitiation, src: Endpoint): void {
    this.roam(src);
    this.timersAnyAuthenticatedPacketTraversal();
    this.timersAnyAuthenticatedPacketReceived();
    const localIndex = this.host.indices.newIndex(this);
    const { message, keys } = createResponse(this.remote, c, localIndex);
    const buf = encodeResponse(message);
    this.cookies.stamp(buf, RESPONSE_MAC1_OFFSET, RESPONSE_MAC2_OFFSET);
    this.beginSession(keys, false, localIndex, c.remoteIndex);
    this.timersAnyAuthenticatedPacketTraversal();
    this.timersAnyAuthenticatedPacketSent();
    const to = this.replyEndpoint(src);
    if (to) this.sendDatagram(buf, to);
  }

  /** The pending initiation this index belongs to, if any. */
  pendingInitiation(localIndex: number): InitiatorState | null {
    const h = this.handshake;
    return h.kind === 'initiationSent' && h.localIndex === localIndex ? h.state : null;
  }

  /** Completes our initiation; sends what was staged, or a keepalive to confirm the session. */
  completeInitiation(keys: TransportKeys, localIndex: number, remoteIndex: number, src: Endpoint): void {
    this.handshake = { kind: 'none' };
    this.roam(src);
    this.beginSession(keys, true, localIndex, remoteIndex);
    this.timersHandshakeComplete();
    this.timersAnyAuthenticatedPacketTraversal();
    this.timersAnyAuthenticatedPacketReceived();
    this.sendKeepalive();
  }

  private beginSession(keys: TransportKeys, isInitiator: boolean, localIndex: number, remoteIndex: number): void {
    const kp = new Keypair(keys.send, keys.recv, isInitiator, localIndex, remoteIndex, this.host.clock.now());
    this.host.stats.sessions++;
    this.host.indices.bindKeypair(localIndex, this, kp);
    this.timersSessionDerived();
    if (isInitiator) {
      if (this.next) {
        this.dropKeypair(this.previous);
        this.previous = this.next;
        this.next = null;
      } else {
        this.dropKeypair(this.previous);
        this.previous = this.current;
      }
      this.current = kp;
    } else {
      this.dropKeypair(this.next);
      this.next = kp;
      this.dropKeypair(this.previous);
      this.previous = null;
    }
  }

  private clearHandshake(): void {
    const h = this.handshake;
    if (h.kind === 'initiationSent') this.host.indices.delete(h.localIndex);
    this.handshake = { kind: 'none' };
  }

  /** Makes current keys unusable for sending so the next packet starts a handshake. */
  expireCurrentKeypairs(): void {
    this.clearHandshake();
    this.lastSentHandshakeMs = -Infinity;
    const stale = this.host.clock.now() - this.host.timers.rejectAfterTimeMs - 1;
    for (const kp of [this.current, this.next]) if (kp) kp.createdMs = stale;
  }

  protected expireAll(): void {
    this.dropKeypair(this.previous);
    this.dropKeypair(this.current);
    this.dropKeypair(this.next);
    this.previous = this.current = this.next = null;
    this.clearHandshake();
  }
}
