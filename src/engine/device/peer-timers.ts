// A peer's timers (whitepaper §6), the same state machine as wireguard-go's
// device/timers.go and with its event names: the send, handshake and receive
// layers report what happened (timersDataSent, timersHandshakeComplete, …) and
// the timers decide when to resend an initiation, send a keepalive, start a
// new handshake or forget the keys. All run on the device's Clock; a timer
// re-armed by a packet reads the device's coarse clock (coarse-clock.ts), so
// it may fire up to CLOCK_TICK_MS (250 ms) early: 1/40 of the shortest of
// these timers (KEEPALIVE_TIMEOUT, 10 s), less than REKEY_TIMEOUT's jitter
// (333 ms), and early is the safe side for keepalives and retries.
import { LazyTimer } from '../clock.js';
import { PeerState } from './peer-state.js';

export abstract class PeerTimers extends PeerState {
  /** initiations resent since the last one the peer itself asked for */
  protected handshakeAttempts = 0;
  /** data arrived while the keepalive timer was pending: send one more after it fires */
  private needAnotherKeepalive = false;
  /** the initiator's one handshake when its session nears REJECT_AFTER_TIME (reset when a handshake completes) */
  protected sentLastMinuteHandshake = false;

  private readonly retransmitHandshake = new LazyTimer(this.host.clock, () => this.expiredRetransmitHandshake(), this.host.coarseClock);
  private readonly sendKeepaliveTimer = new LazyTimer(this.host.clock, () => this.expiredSendKeepalive(), this.host.coarseClock);
  private readonly newHandshake = new LazyTimer(this.host.clock, () => this.expiredNewHandshake(), this.host.coarseClock);
  private readonly zeroKeyMaterial = new LazyTimer(this.host.clock, () => this.expiredZeroKeyMaterial(), this.host.coarseClock);
  private readonly persistentKeepalive = new LazyTimer(this.host.clock, () => this.expiredPersistentKeepalive(), this.host.coarseClock);
  /** a resend of the pending initiation on a way that opened while it was too young (peer-handshake.ts `pathOpened`) */
  private readonly pathResend = new LazyTimer(this.host.clock, () => this.expiredPathResend());

  // what the timers make the peer do, in the layers above
  abstract sendKeepalive(): void;
  abstract sendHandshakeInitiation(isRetry: boolean): void;
  /** the resend `timersPathResendIn` held back is due */
  protected abstract expiredPathResend(): void;
  /** the handshake was given up: packets waiting for it are dropped */
  protected abstract dropStaged(): void;
  /** forgets every keypair and the pending handshake */
  protected abstract expireAll(): void;

  protected jitter(): number {
    return Math.floor(Math.random() * this.host.timers.rekeyTimeoutJitterMaxMs);
  }

  // ---- events ------------------------------------------------------------------

  /** a data packet (not a keepalive) was sent: expect an answer within keepalive + rekey timeout */
  protected timersDataSent(): void {
    if (!this.newHandshake.pending) this.newHandshake.mod(this.host.timers.keepaliveTimeoutMs + this.host.timers.rekeyTimeoutMs + this.jitter());
  }

  /** a data packet arrived: answer it with a keepalive unless data goes back first */
  protected timersDataReceived(): void {
    if (!this.sendKeepaliveTimer.pending) this.sendKeepaliveTimer.mod(this.host.timers.keepaliveTimeoutMs);
    else this.needAnotherKeepalive = true;
  }

  /** any authenticated packet left: it stands in for the keepalive */
  protected timersAnyAuthenticatedPacketSent(): void {
    this.sendKeepaliveTimer.del();
  }

  /** any authenticated packet arrived: the peer is alive, no new handshake needed */
  protected timersAnyAuthenticatedPacketReceived(): void {
    this.newHandshake.del();
  }

  /** any authenticated packet either way pushes the persistent keepalive back */
  protected timersAnyAuthenticatedPacketTraversal(): void {
    if (this.persistentKeepaliveSec > 0) this.persistentKeepalive.mod(this.persistentKeepaliveSec * 1000);
  }

  protected timersHandshakeInitiated(): void {
    this.retransmitHandshake.mod(this.host.timers.rekeyTimeoutMs + this.jitter());
  }

  /** a way to the peer opened while the pending initiation was too young to resend: resend it in `ms` (fine clock) */
  protected timersPathResendIn(ms: number): void {
    this.pathResend.mod(ms);
  }

  protected timersHandshakeComplete(): void {
    this.retransmitHandshake.del();
    this.pathResend.del();
    this.handshakeAttempts = 0;
    this.sentLastMinuteHandshake = false;
    this.lastHandshakeWallMs = this.host.clock.wallNow();
  }

  /** a new keypair exists: all keys are forgotten after 3 × REJECT_AFTER_TIME without another */
  protected timersSessionDerived(): void {
    this.zeroKeyMaterial.mod(this.host.timers.rejectAfterTimeMs * 3);
  }

  protected timersPersistentKeepaliveOff(): void {
    this.persistentKeepalive.del();
  }

  protected timersStop(): void {
    for (const t of [this.retransmitHandshake, this.sendKeepaliveTimer, this.newHandshake, this.zeroKeyMaterial, this.persistentKeepalive, this.pathResend])
      t.stop();
  }

  // ---- expiries ----------------------------------------------------------------

  private expiredRetransmitHandshake(): void {
    const maxAttempts = Math.floor(this.host.timers.rekeyAttemptTimeMs / this.host.timers.rekeyTimeoutMs) - 1;
    if (this.handshakeAttempts > maxAttempts) {
      this.host.log(`handshake did not complete after ${maxAttempts + 2} attempts, giving up`);
      this.host.stats.handshakes.failed++;
      this.sendKeepaliveTimer.del();
      this.dropStaged();
      if (!this.zeroKeyMaterial.pending) this.zeroKeyMaterial.mod(this.host.timers.rejectAfterTimeMs * 3);
      return;
    }
    this.handshakeAttempts++;
    this.sendHandshakeInitiation(true);
  }

  private expiredSendKeepalive(): void {
    this.sendKeepalive();
    if (this.needAnotherKeepalive) {
      this.needAnotherKeepalive = false;
      this.sendKeepaliveTimer.mod(this.host.timers.keepaliveTimeoutMs);
    }
  }

  private expiredNewHandshake(): void {
    this.host.log('no reply to data within keepalive + rekey timeout, starting a new handshake');
    this.sendHandshakeInitiation(false);
  }

  private expiredZeroKeyMaterial(): void {
    this.expireAll();
  }

  private expiredPersistentKeepalive(): void {
    if (this.persistentKeepaliveSec > 0) this.sendKeepalive();
  }
}
