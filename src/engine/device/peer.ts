// One WireGuard peer: its keypairs (previous/current/next, so no packet is lost
// across a rekey), its pending handshake, its timers (whitepaper §6; the same
// state machine as wireguard-go's timers.go) and its endpoint, which follows
// the source of the last authenticated packet (roaming).
import { type Clock, LazyTimer } from '../clock.js';
import {
  HANDSHAKE_INITIATION_RATE_MS,
  MAX_STAGED_PACKETS,
  PADDING_MULTIPLE,
  REJECT_AFTER_MESSAGES,
  REKEY_AFTER_MESSAGES,
  TRANSPORT_HEADER_SIZE,
  type EngineTimers,
} from './constants.js';
import { CookieGenerator } from './cookie.js';
import { TAG_LEN, tai64n } from './crypto.js';
import { endpointEquals, isVirtualEndpoint, type Endpoint } from '../conn/endpoint.js';
import { type IndexTable, Keypair } from './keypair.js';
import {
  encodeInitiation,
  encodeResponse,
  INITIATION_MAC1_OFFSET,
  INITIATION_MAC2_OFFSET,
  RESPONSE_MAC1_OFFSET,
  RESPONSE_MAC2_OFFSET,
  writeTransportHeader,
} from './messages.js';
import {
  createInitiation,
  createResponse,
  makeRemoteStatic,
  type ConsumedInitiation,
  type InitiatorState,
  type RemoteStatic,
  type StaticIdentity,
  type TransportKeys,
} from './noise.js';
import type { EngineStats } from './stats.js';
import { packetAead } from './aead.js';

/** What a peer needs from its device. */
export interface PeerHost {
  readonly clock: Clock;
  readonly timers: EngineTimers;
  readonly indices: IndexTable;
  readonly stats: EngineStats;
  identity(): StaticIdentity | null;
  mtu(): number;
  sendDatagram(buf: Buffer, ep: Endpoint): boolean;
  /** room for a datagram in the bind's send batch: an offset into reservedMemory(), or -1 (then sendDatagram) */
  reserveDatagram(len: number, ep: Endpoint): number;
  reservedMemory(): Buffer | null;
  /** queues the datagram written at the last reservation */
  commitDatagram(len: number): void;
  log(msg: string): void;
}

type HandshakeState = { kind: 'none' } | { kind: 'initiationSent'; localIndex: number; state: InitiatorState } | { kind: 'initiationConsumed' };

export class Peer {
  remote: RemoteStatic;
  endpoint: Endpoint | null = null;
  persistentKeepaliveSec = 0;
  rxBytes = 0;
  txBytes = 0;
  lastHandshakeWallMs = 0;

  private previous: Keypair | null = null;
  private current: Keypair | null = null;
  private next: Keypair | null = null;
  private handshake: HandshakeState = { kind: 'none' };
  private lastSentHandshakeMs = -Infinity;
  private lastTimestamp: Buffer = Buffer.alloc(12);
  private lastInitiationConsumedMs = -Infinity;
  private staged: Buffer[] = [];
  private handshakeAttempts = 0;
  private needAnotherKeepalive = false;
  private sentLastMinuteHandshake = false;
  private readonly cookies: CookieGenerator;
  private readonly aead = packetAead();

  private readonly retransmitHandshake: LazyTimer;
  private readonly sendKeepaliveTimer: LazyTimer;
  private readonly newHandshake: LazyTimer;
  private readonly zeroKeyMaterial: LazyTimer;
  private readonly persistentKeepalive: LazyTimer;

  constructor(
    private readonly host: PeerHost,
    publicKey: Buffer,
  ) {
    const id = host.identity();
    this.remote = makeRemoteStatic(id, publicKey, null);
    this.cookies = new CookieGenerator(publicKey, () => host.clock.now(), host.timers.cookieRefreshTimeMs);
    const c = host.clock;
    this.retransmitHandshake = new LazyTimer(c, () => this.expiredRetransmitHandshake());
    this.sendKeepaliveTimer = new LazyTimer(c, () => this.expiredSendKeepalive());
    this.newHandshake = new LazyTimer(c, () => this.expiredNewHandshake());
    this.zeroKeyMaterial = new LazyTimer(c, () => this.expiredZeroKeyMaterial());
    this.persistentKeepalive = new LazyTimer(c, () => this.expiredPersistentKeepalive());
  }

  get publicKey(): Buffer {
    return this.remote.publicKey;
  }

  get cookieGenerator(): CookieGenerator {
    return this.cookies;
  }

  // ---- configuration -------------------------------------------------------

  setPresharedKey(psk: Buffer | null): void {
    this.remote = { ...this.remote, presharedKey: psk ?? Buffer.alloc(32) };
  }

  presharedKey(): Buffer | null {
    return this.remote.presharedKey.some((b) => b !== 0) ? this.remote.presharedKey : null;
  }

  /** Our private key changed: recompute DH(s, S) and drop sessions made with the old key. */
  rekeyIdentity(id: StaticIdentity | null): void {
    const psk = this.presharedKey();
    this.remote = makeRemoteStatic(id, this.remote.publicKey, psk);
    this.expireCurrentKeypairs();
  }

  setPersistentKeepalive(sec: number): void {
    const turnedOn = this.persistentKeepaliveSec === 0 && sec > 0;
    this.persistentKeepaliveSec = sec;
    if (sec === 0) this.persistentKeepalive.del();
    // wireguard-go sends one at once so a NAT mapping opens without waiting a full interval
    if (turnedOn && this.endpoint) this.sendKeepalive();
  }

  /**
   * WireGuard roaming: the endpoint follows the source of authenticated
   * packets, unless path selection owns it (a virtual endpoint, see ../paths/paths.ts),
   * which then decides between direct paths and the relay itself.
   */
  roam(src: Endpoint): void {
    if (this.endpoint && isVirtualEndpoint(this.endpoint)) return;
    this.setEndpoint(src);
  }

  setEndpoint(ep: Endpoint): void {
    if (!endpointEquals(this.endpoint, ep)) this.endpoint = { address: ep.address, port: ep.port };
  }

  // ---- sending ---------------------------------------------------------------

  /** Sends an inner IP packet, staging it while a handshake completes. */
  sendPacket(pkt: Buffer): void {
    if (this.staged.length === 0) {
      const kp = this.current;
      if (kp && this.usableForSending(kp)) {
        this.encryptAndSend(kp, pkt);
        return;
      }
    }
    this.stage(pkt);
    this.sendStagedPackets();
  }

  sendKeepalive(): void {
    if (this.staged.length === 0) this.stage(Buffer.alloc(0));
    this.sendStagedPackets();
  }

  /** Keeps a copy: a packet handed to sendPacket may be a view of a reused read buffer. */
  private stage(pkt: Buffer): void {
    if (this.staged.length >= MAX_STAGED_PACKETS) {
      this.staged.shift();
      this.host.stats.dropped.noKeypair++;
    }
    this.staged.push(Buffer.from(pkt));
  }

  sendStagedPackets(): void {
    const kp = this.current;
    if (!kp || !this.usableForSending(kp)) {
      this.sendHandshakeInitiation(false);
      return;
    }
    const batch = this.staged;
    this.staged = [];
    for (const p of batch) this.encryptAndSend(kp, p);
  }

  private usableForSending(kp: Keypair): boolean {
    return kp.sendCounter < REJECT_AFTER_MESSAGES && this.host.clock.now() - kp.createdMs < this.host.timers.rejectAfterTimeMs;
  }

  private encryptAndSend(kp: Keypair, pkt: Buffer): void {
    const ep = this.endpoint;
    if (!ep) {
      this.host.stats.dropped.noEndpoint++;
      return;
    }
    const mtu = this.host.mtu();
    let padded = (pkt.length + PADDING_MULTIPLE - 1) & ~(PADDING_MULTIPLE - 1);
    if (padded > mtu) padded = Math.max(mtu, pkt.length);
    const len = TRANSPORT_HEADER_SIZE + padded + TAG_LEN;
    const counter = kp.sendCounter++;
    // sealed straight into the send batch's memory where the bind offers room: no Buffer and no copy per packet
    const at = this.host.reserveDatagram(len, ep);
    const mem = at >= 0 ? this.host.reservedMemory() : null;
    if (mem) {
      writeTransportHeader(mem, kp.remoteIndex, counter, at);
      this.aead.seal(kp.sendKey, counter, pkt, padded - pkt.length, mem, at + TRANSPORT_HEADER_SIZE);
      this.host.commitDatagram(len);
      this.txBytes += len;
    } else {
      const out = Buffer.allocUnsafe(len);
      writeTransportHeader(out, kp.remoteIndex, counter);
      this.aead.seal(kp.sendKey, counter, pkt, padded - pkt.length, out, TRANSPORT_HEADER_SIZE);
      if (this.host.sendDatagram(out, ep)) this.txBytes += len;
    }
    // timers, in wireguard-go's order (send.go RoutineSequentialSender)
    this.timersAnyAuthenticatedPacketTraversal();
    this.sendKeepaliveTimer.del();
    if (pkt.length > 0 && !this.newHandshake.pending)
      this.newHandshake.mod(this.host.timers.keepaliveTimeoutMs + this.host.timers.rekeyTimeoutMs + this.jitter());
    this.keepKeyFreshSending(kp);
  }

  private keepKeyFreshSending(kp: Keypair): void {
    if (!kp.isInitiator) return;
    if (kp.sendCounter > REKEY_AFTER_MESSAGES || this.host.clock.now() - kp.createdMs > this.host.timers.rekeyAfterTimeMs) {
      this.sendHandshakeInitiation(false);
    }
  }

  // ---- handshake -------------------------------------------------------------

  /**
   * Path selection found a way to the peer: an initiation sent before there
   * was one is resent now instead of after REKEY_TIMEOUT (5 s), so the first
   * packet after `up` does not wait for the retry timer.
   */
  pathOpened(): void {
    if (this.handshake.kind !== 'initiationSent') return;
    const kp = this.current;
    if (kp && this.usableForSending(kp)) return;
    this.lastSentHandshakeMs = -Infinity;
    this.sendHandshakeInitiation(true);
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
    const { message, state } = createInitiation(id, this.remote, localIndex, tai64n(this.host.clock.wallNow()));
    this.handshake = { kind: 'initiationSent', localIndex, state };
    const buf = encodeInitiation(message);
    this.cookies.stamp(buf, INITIATION_MAC1_OFFSET, INITIATION_MAC2_OFFSET);
    this.timersAnyAuthenticatedPacketTraversal();
    this.sendKeepaliveTimer.del();
    this.retransmitHandshake.mod(this.host.timers.rekeyTimeoutMs + this.jitter());
    if (!this.endpoint) return;
    if (this.host.sendDatagram(buf, this.endpoint)) this.txBytes += buf.length;
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

  /** Answers an accepted initiation; the new keypair waits in `next` until the initiator uses it. */
  sendHandshakeResponse(c: ConsumedInitiation, src: Endpoint): void {
    this.roam(src);
    this.timersAnyAuthenticatedPacketTraversal();
    this.newHandshake.del();
    this.clearHandshake();
    const localIndex = this.host.indices.newIndex(this);
    const { message, keys } = createResponse(this.remote, c, localIndex);
    const buf = encodeResponse(message);
    this.cookies.stamp(buf, RESPONSE_MAC1_OFFSET, RESPONSE_MAC2_OFFSET);
    this.beginSession(keys, false, localIndex, c.remoteIndex);
    this.timersAnyAuthenticatedPacketTraversal();
    this.sendKeepaliveTimer.del();
    if (this.host.sendDatagram(buf, src)) this.txBytes += buf.length;
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
    this.newHandshake.del();
    this.sendKeepalive();
  }

  private beginSession(keys: TransportKeys, isInitiator: boolean, localIndex: number, remoteIndex: number): void {
    const kp = new Keypair(keys.send, keys.recv, isInitiator, localIndex, remoteIndex, this.host.clock.now());
    this.host.stats.sessions++;
    this.host.indices.bindKeypair(localIndex, this, kp);
    this.zeroKeyMaterial.mod(this.host.timers.rejectAfterTimeMs * 3);
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

  private dropKeypair(kp: Keypair | null): void {
    if (kp) this.host.indices.delete(kp.localIndex);
  }

  private clearHandshake(): void {
    const h = this.handshake;
    if (h.kind === 'initiationSent') this.host.indices.delete(h.localIndex);
    this.handshake = { kind: 'none' };
  }

  // ---- receiving -------------------------------------------------------------

  /** Called after a transport packet on `kp` authenticated; rotates `next` in when first used. */
  receivedWith(kp: Keypair, src: Endpoint, datagramLength: number, payloadLength: number): void {
    this.roam(src);
    this.rxBytes += datagramLength;
    if (kp === this.next) {
      this.dropKeypair(this.previous);
      this.previous = this.current;
      this.current = kp;
      this.next = null;
      this.timersHandshakeComplete();
      this.sendStagedPackets();
    }
    this.keepKeyFreshReceiving();
    this.timersAnyAuthenticatedPacketTraversal();
    this.newHandshake.del();
    if (payloadLength > 0) {
      if (!this.sendKeepaliveTimer.pending) this.sendKeepaliveTimer.mod(this.host.timers.keepaliveTimeoutMs);
      else this.needAnotherKeepalive = true;
    }
  }

  private keepKeyFreshReceiving(): void {
    if (this.sentLastMinuteHandshake) return;
    const kp = this.current;
    const t = this.host.timers;
    if (kp && kp.isInitiator && this.host.clock.now() - kp.createdMs > t.rejectAfterTimeMs - t.keepaliveTimeoutMs - t.rekeyTimeoutMs) {
      this.sentLastMinuteHandshake = true;
      this.sendHandshakeInitiation(false);
    }
  }

  keypairExpired(kp: Keypair): boolean {
    return this.host.clock.now() - kp.createdMs >= this.host.timers.rejectAfterTimeMs;
  }

  // ---- timers ----------------------------------------------------------------

  private jitter(): number {
    return Math.floor(Math.random() * this.host.timers.rekeyTimeoutJitterMaxMs);
  }

  private timersAnyAuthenticatedPacketTraversal(): void {
    if (this.persistentKeepaliveSec > 0) this.persistentKeepalive.mod(this.persistentKeepaliveSec * 1000);
  }

  private timersHandshakeComplete(): void {
    this.retransmitHandshake.del();
    this.handshakeAttempts = 0;
    this.sentLastMinuteHandshake = false;
    this.lastHandshakeWallMs = this.host.clock.wallNow();
  }

  private expiredRetransmitHandshake(): void {
    const maxAttempts = Math.floor(this.host.timers.rekeyAttemptTimeMs / this.host.timers.rekeyTimeoutMs) - 1;
    if (this.handshakeAttempts > maxAttempts) {
      this.host.log(`handshake did not complete after ${maxAttempts + 2} attempts, giving up`);
      this.sendKeepaliveTimer.del();
      this.staged = [];
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

  /** Makes current keys unusable for sending so the next packet starts a handshake. */
  expireCurrentKeypairs(): void {
    this.clearHandshake();
    this.lastSentHandshakeMs = -Infinity;
    const stale = this.host.clock.now() - this.host.timers.rejectAfterTimeMs - 1;
    for (const kp of [this.current, this.next]) if (kp) kp.createdMs = stale;
  }

  private expireAll(): void {
    this.dropKeypair(this.previous);
    this.dropKeypair(this.current);
    this.dropKeypair(this.next);
    this.previous = this.current = this.next = null;
    this.clearHandshake();
  }

  /** Stops all timers and forgets all keys: the peer is being removed. */
  close(): void {
    for (const t of [this.retransmitHandshake, this.sendKeepaliveTimer, this.newHandshake, this.zeroKeyMaterial, this.persistentKeepalive]) t.stop();
    this.expireAll();
    this.staged = [];
  }
}
