// The WireGuard device: private key, peers, cryptokey routing and the two
// packet paths (UDP in → decrypt → TUN, TUN in → encrypt → UDP). It owns no
// sockets or file descriptors: a NetBind and a packet writer are injected, so
// the same code runs on real UDP/TUN and in memory in tests. The receive path
// never throws: anything malformed is counted in `stats.dropped` and dropped.
import { AllowedIps } from './allowedips.js';
import { systemClock, type Clock } from '../clock.js';
import { CoarseClock } from '../coarse-clock.js';
import type { NetBind } from '../conn/bind.js';
import {
  DEFAULT_TIMERS,
  MAX_MESSAGE_SIZE,
  REJECT_AFTER_MESSAGES,
  TRANSPORT_HEADER_SIZE,
  UNDER_LOAD_HANDSHAKES_PER_SECOND,
  type EngineTimers,
} from './constants.js';
import { HandshakeAdmission } from './admission.js';
import { chainHooks, type PacketFilterHooks, type PacketHook } from './filter.js';
import { isZero, TAG_LEN } from './crypto.js';
import { packetAead } from './aead.js';
import type { Endpoint } from '../conn/endpoint.js';
import { addressLength, claimedLengthAt, destinationOffset, sourceOffset } from './ippacket.js';
import { IndexTable } from './keypair.js';
import {
  classify,
  decodeCookieReply,
  decodeInitiation,
  decodeResponse,
  INITIATION_MAC1_OFFSET,
  transportCounter,
  transportReceiver,
  INITIATION_MAC2_OFFSET,
  RESPONSE_MAC1_OFFSET,
  RESPONSE_MAC2_OFFSET,
} from './messages.js';
import { consumeInitiation, consumeResponse, makeIdentity, type StaticIdentity } from './noise.js';
import { Peer, type PeerHost } from './peer.js';
import { MonotonicTai64n, type TimestampFloorStore } from './tai64n-source.js';
import { newStats, type EngineStats } from './stats.js';
import { UapiError, type UapiDeviceSnapshot, type UapiSetRequest, type UapiTarget } from './uapi-types.js';

export interface DeviceOptions {
  clock?: Clock;
  timers?: Partial<EngineTimers>;
  mtu?: number;
  logger?: (msg: string) => void;
  /** handshakes per second beyond which MAC2 cookies are required */
  underLoadHandshakesPerSecond?: number;
  /** where the floor of the handshake timestamps persists across restarts (tai64n-source.ts); none: memory only */
  timestampFloor?: TimestampFloorStore | null;
}

/**
 * Decrypted packets up to this length are handed on as views of the device's reused memory that are made once per
 * length and kept: no object per packet. 2,048 covers every MTU up to 2,000; a longer packet gets a view of its own.
 */
const CACHED_VIEW_MAX_BYTES = 2048;
const EADDRINUSE = 98;
const EINVAL = 22;
const DEFAULT_MTU = 1420;

export class Device implements UapiTarget, PeerHost {
  readonly clock: Clock;
  /** what per-packet checks and timer re-arms read (coarse-clock.ts): no clock read per packet while packets flow */
  readonly coarseClock: CoarseClock;
  readonly timers: EngineTimers;
  readonly indices = new IndexTable<Peer>();
  readonly stats: EngineStats = newStats();
  readonly allowedIps = new AllowedIps<Peer>();
  /** the TAI64N timestamps of our initiations: never lower than one sent before, across wall-clock steps and restarts */
  readonly handshakeTimestamps: MonotonicTai64n;
  private readonly peers = new Map<string, Peer>();
  private id: StaticIdentity | null = null;
  private readonly admission: HandshakeAdmission;
  private readonly logger: (msg: string) => void;
  private netBind: NetBind | null = null;
  private tunWriter: ((pkt: Buffer) => boolean) | null = null;
  /** the packet-filter stages of each direction as one hook; null (the default) lets everything through */
  private filterIn: PacketHook | null = null;
  private filterOut: PacketHook | null = null;
  private listenPort = 0;
  private fwmark = 0;
  private readonly mtuBytes: number;
  private readonly aead = packetAead();
  /**
   * Where a transport message is opened: copied in and decrypted in place, the plaintext after the header. One
   * message is in it at a time, so the TUN writer and the inbound hooks must be done with a packet when they return.
   */
  private readonly plainWork = Buffer.allocUnsafeSlow(MAX_MESSAGE_SIZE);
  private readonly plainBody = new Uint8Array(this.plainWork.buffer, TRANSPORT_HEADER_SIZE);
  /** views of plainWork's packet by length, made on first use */
  private readonly plainViews: (Buffer | null)[] = Array.from({ length: CACHED_VIEW_MAX_BYTES + 1 }, () => null);
  /** plainWork holds a packet being handed on: a receive nested inside (an in-memory bind) opens into its own memory */
  private plainBusy = false;
  /**
   * Peers made on demand (lazy peers, docs/architecture.md): a packet from the TUN whose destination no peer's
   * AllowedIPs hold, or only a route owner's (Peer.routeOwner), is offered here (`dst` the offset of its destination
   * address, `len` 4 or 16); the owner returns the peer that should carry it, made now if need be, or undefined to
   * leave it as it was (dropped as `noRoute`, or to the route owner). Null: no lazy peers.
   */
  onRouteMiss: ((pkt: Buffer, dst: number, len: number) => Peer | undefined) | null = null;
  /**
   * A handshake initiation whose sender's static key (decrypted, not yet authenticated) is no peer's: the owner may
   * add that peer and return it, so the handshake completes. Null: such initiations drop.
   */
  onUnknownInitiator: ((publicKey: Buffer) => Peer | undefined) | null = null;

  /** which ChaCha20-Poly1305 implementation the data path uses (aead.ts) */
  get aeadName(): string {
    return this.aead.name;
  }

  constructor(opts: DeviceOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.coarseClock = new CoarseClock(this.clock);
    this.timers = { ...DEFAULT_TIMERS, ...opts.timers };
    this.mtuBytes = opts.mtu ?? DEFAULT_MTU;
    this.logger = opts.logger ?? (() => {});
    this.admission = new HandshakeAdmission(this, opts.underLoadHandshakesPerSecond ?? UNDER_LOAD_HANDSHAKES_PER_SECOND);
    this.handshakeTimestamps = new MonotonicTai64n(() => this.clock.wallNow(), { store: opts.timestampFloor, log: this.logger });
  }

  // ---- PeerHost ------------------------------------------------------------------

  identity(): StaticIdentity | null {
    return this.id;
  }
  mtu(): number {
    return this.mtuBytes;
  }
  log(msg: string): void {
    this.logger(msg);
  }
  /** the bind the peers' datagrams leave through (peer-send.ts calls it directly) */
  get bind(): NetBind | null {
    return this.netBind;
  }

  // ---- wiring ----------------------------------------------------------------------

  async attachBind(bind: NetBind, port: number): Promise<void> {
    this.netBind = bind;
    this.listenPort = await bind.open(port, (b, src) => this.receiveDatagram(b, src));
    if (this.fwmark) bind.setMark(this.fwmark);
  }

  /** `writer` gets each decrypted packet in memory the device reuses after the call returns: it copies what it keeps. */
  attachTun(writer: (pkt: Buffer) => boolean): void {
    this.tunWriter = writer;
  }

  get port(): number {
    return this.listenPort;
  }

  /** Installs the packet-filter hooks (filter.ts), replacing any before; null accepts every packet. */
  setPacketFilter(hooks: PacketFilterHooks | null): void {
    this.filterIn = hooks ? chainHooks([hooks.preFilterIn, hooks.filterIn, hooks.postFilterIn]) : null;
    this.filterOut = hooks ? chainHooks([hooks.preFilterOut, hooks.filterOut, hooks.postFilterOut]) : null;
  }

  async close(): Promise<void> {
    for (const p of this.peers.values()) p.close();
    this.peers.clear();
    this.allowedIps.clear();
    await this.netBind?.close();
    this.netBind = null;
  }

  // ---- keys and peers ------------------------------------------------------------

  setPrivateKey(key: Buffer | null): void {
    if (key && this.id && key.equals(this.id.privateKey)) return;
    this.id = key && !isZero(key) ? makeIdentity(key) : null;
    this.admission.setPublicKey(this.id?.publicKey ?? null);
    // a peer with our own public key would be a loop: wireguard-go removes it
    if (this.id) this.removePeer(this.id.publicKey);
    for (const p of this.peers.values()) p.rekeyIdentity(this.id);
  }

  getPeer(publicKey: Buffer): Peer | undefined {
    return this.peers.get(publicKey.toString('hex'));
  }

  addPeer(publicKey: Buffer): Peer {
    const existing = this.getPeer(publicKey);
    if (existing) return existing;
    const p = new Peer(this, publicKey);
    this.peers.set(publicKey.toString('hex'), p);
    return p;
  }

  removePeer(publicKey: Buffer): void {
    const p = this.getPeer(publicKey);
    if (!p) return;
    p.close();
    this.allowedIps.removeByValue(p);
    this.peers.delete(publicKey.toString('hex'));
  }

  get peerCount(): number {
    return this.peers.size;
  }

  allPeers(): Peer[] {
    return [...this.peers.values()];
  }

  // ---- TUN → UDP -------------------------------------------------------------------

  /** A batch of packets from the TUN device: their datagrams leave together. */
  sendPackets(pkts: Buffer[]): void {
    this.netBind?.beginBatch?.();
    try {
      // one call site for routePacket and one null test per packet: the loop keeps the shape it has without hooks
      const filter = this.filterOut;
      for (const p of pkts) {
        if (filter !== null && !filter(p)) this.stats.dropped.filteredOut++;
        else this.routePacket(p);
      }
    } finally {
      this.netBind?.flushBatch?.();
    }
  }

  /** An IP packet read from the TUN device: through the outbound filter hooks, then to its peer. */
  sendPacket(pkt: Buffer): void {
    const filter = this.filterOut;
    if (filter !== null && !filter(pkt)) {
      this.stats.dropped.filteredOut++;
      return;
    }
    this.routePacket(pkt);
  }

  /** Routes a packet by destination to its peer, which encrypts and sends it. */
  private routePacket(pkt: Buffer): void {
    const dst = destinationOffset(pkt);
    let peer = dst >= 0 ? this.allowedIps.lookupAt(pkt, dst, addressLength(pkt)) : undefined;
    if ((peer === undefined || peer.routeOwner) && dst >= 0 && this.onRouteMiss !== null) peer = this.onRouteMiss(pkt, dst, addressLength(pkt)) ?? peer;
    if (!peer) {
      this.stats.dropped.noRoute++;
      return;
    }
    if (pkt.length > MAX_MESSAGE_SIZE - TRANSPORT_HEADER_SIZE - TAG_LEN) {
      this.stats.dropped.tooLarge++;
      return;
    }
    this.stats.routed++;
    peer.sendPacket(pkt);
  }

  // ---- UDP → TUN -------------------------------------------------------------------

  receiveDatagram(buf: Buffer, src: Endpoint): void {
    this.stats.rx.packets++;
    this.stats.rx.bytes += buf.length;
    try {
      const kind = classify(buf);
      switch (kind) {
        case 'transport':
          this.receiveTransport(buf, src);
          return;
        case 'initiation':
          this.receiveInitiation(buf, src);
          return;
        case 'response':
          this.receiveResponse(buf, src);
          return;
        case 'cookie':
          this.receiveCookieReply(buf);
          return;
        default:
          this.stats.dropped[kind]++;
      }
    } catch (err) {
      this.stats.dropped.internalError++;
      this.logger(`internal error on receive path: ${(err as Error).message}`);
    }
  }

  private receiveTransport(buf: Buffer, src: Endpoint): void {
    const counter = transportCounter(buf);
    const entry = this.indices.get(transportReceiver(buf));
    const kp = entry?.keypair;
    if (!entry || !kp) {
      this.stats.dropped.unknownIndex++;
      return;
    }
    const peer = entry.peer;
    if (counter >= REJECT_AFTER_MESSAGES || peer.keypairExpired(kp)) {
      this.stats.dropped.expired++;
      return;
    }
    const nested = this.plainBusy;
    const work = nested ? Buffer.allocUnsafe(buf.length) : this.plainWork;
    const n = this.aead.openInto(kp.recvKey, counter, buf, TRANSPORT_HEADER_SIZE, work, nested ? work.subarray(TRANSPORT_HEADER_SIZE) : this.plainBody);
    if (n < 0) {
      this.stats.dropped.decrypt++;
      return;
    }
    if (!kp.replay.validateCounter(counter, REJECT_AFTER_MESSAGES)) {
      this.stats.dropped.replay++;
      return;
    }
    this.plainBusy = true;
    try {
      peer.receivedWith(kp, src, buf.length, n);
      if (n > 0) this.deliverPlain(peer, work, n, nested); // n = 0: a keepalive
    } finally {
      this.plainBusy = nested;
    }
  }

  /** The decrypted packet of `n` bytes after the header in `work`: AllowedIPs source check, inbound hooks, the TUN. */
  private deliverPlain(peer: Peer, work: Buffer, n: number, nested: boolean): void {
    const len = claimedLengthAt(work, TRANSPORT_HEADER_SIZE, n);
    if (len < 0) {
      this.stats.dropped.badInnerPacket++;
      return;
    }
    let pkt: Buffer;
    if (!nested && len <= CACHED_VIEW_MAX_BYTES) {
      const views = this.plainViews;
      pkt = views[len] ?? (views[len] = Buffer.from(work.buffer, work.byteOffset + TRANSPORT_HEADER_SIZE, len));
    } else pkt = work.subarray(TRANSPORT_HEADER_SIZE, TRANSPORT_HEADER_SIZE + len);
    const source = sourceOffset(pkt);
    if (source < 0 || this.allowedIps.lookupAt(pkt, source, addressLength(pkt)) !== peer) {
      this.stats.dropped.disallowedSource++;
      return;
    }
    const filter = this.filterIn;
    if (filter !== null && !filter(pkt)) {
      this.stats.dropped.filteredIn++;
      return;
    }
    this.tunWriter?.(pkt);
  }

  private receiveInitiation(buf: Buffer, src: Endpoint): void {
    const m = decodeInitiation(buf);
    if (!this.admission.admit(buf, INITIATION_MAC1_OFFSET, INITIATION_MAC2_OFFSET, m.sender, src)) return;
    const id = this.id!;
    const lazy = this.onUnknownInitiator;
    const c = consumeInitiation(id, m, (pub) => (this.getPeer(pub) ?? lazy?.(pub))?.remote.staticStatic ?? null);
    if (!c) {
      this.stats.dropped.handshake++;
      return;
    }
    const peer = this.getPeer(c.remoteStaticKey)!;
    if (!peer.acceptInitiation(c)) return;
    peer.rxBytes += buf.length;
    peer.sendHandshakeResponse(c, src);
  }

  private receiveResponse(buf: Buffer, src: Endpoint): void {
    const m = decodeResponse(buf);
    if (!this.admission.admit(buf, RESPONSE_MAC1_OFFSET, RESPONSE_MAC2_OFFSET, m.sender, src)) return;
    const entry = this.indices.get(m.receiver);
    const state = entry?.peer.pendingInitiation(m.receiver);
    if (!entry || !state) {
      this.stats.dropped.unknownIndex++;
      return;
    }
    const keys = consumeResponse(this.id!, entry.peer.remote, state, m);
    if (!keys) {
      this.stats.dropped.handshake++;
      return;
    }
    entry.peer.rxBytes += buf.length;
    entry.peer.completeInitiation(keys, m.receiver, m.sender, src);
  }

  private receiveCookieReply(buf: Buffer): void {
    const reply = decodeCookieReply(buf);
    const entry = this.indices.get(reply.receiver);
    if (!entry) {
      this.stats.dropped.unknownIndex++;
      return;
    }
    if (!entry.peer.cookieGenerator.consumeReply(reply)) this.stats.dropped.badMac2++;
  }

  // ---- UAPI -------------------------------------------------------------------------

  snapshot(): UapiDeviceSnapshot {
    return {
      privateKey: this.id?.privateKey ?? null,
      listenPort: this.listenPort,
      fwmark: this.fwmark,
      peers: this.allPeers().map((p) => ({
        publicKey: p.publicKey,
        presharedKey: p.presharedKey(),
        endpoint: p.endpoint ? { ...p.endpoint } : null,
        persistentKeepaliveSeconds: p.persistentKeepaliveSec,
        lastHandshakeTimeSec: Math.floor(p.lastHandshakeWallMs / 1000),
        lastHandshakeTimeNsec: Math.floor((p.lastHandshakeWallMs % 1000) * 1e6),
        rxBytes: BigInt(p.rxBytes),
        txBytes: BigInt(p.txBytes),
        allowedIps: this.allowedIps.entriesFor(p),
      })),
    };
  }

  async applySet(req: UapiSetRequest): Promise<void> {
    if (req.privateKey !== undefined) this.setPrivateKey(req.privateKey);
    const bind = this.netBind;
    if (req.listenPort !== undefined && req.listenPort !== this.listenPort && bind) {
      try {
        this.listenPort = await bind.open(req.listenPort, (b, src) => this.receiveDatagram(b, src));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        throw new UapiError(code === 'EADDRINUSE' ? -EADDRINUSE : -EINVAL, `cannot listen on port ${req.listenPort}: ${(err as Error).message}`);
      }
      if (this.fwmark) bind.setMark(this.fwmark);
    }
    if (req.fwmark !== undefined) {
      this.fwmark = req.fwmark;
      this.netBind?.setMark(req.fwmark);
    }
    if (req.replacePeers) for (const p of this.allPeers()) this.removePeer(p.publicKey);
    for (const pc of req.peers) {
      if (this.id && pc.publicKey.equals(this.id.publicKey)) continue; // never a peer with ourselves
      if (pc.remove) {
        this.removePeer(pc.publicKey);
        continue;
      }
      let peer = this.getPeer(pc.publicKey);
      if (!peer) {
        if (pc.updateOnly) continue;
        peer = this.addPeer(pc.publicKey);
      }
      if (pc.presharedKey !== undefined) peer.setPresharedKey(isZero(pc.presharedKey) ? null : pc.presharedKey);
      if (pc.endpoint) peer.setEndpoint(pc.endpoint);
      if (pc.replaceAllowedIps) this.allowedIps.removeByValue(peer);
      for (const a of pc.allowedIps) this.allowedIps.insert(a.address, a.bits, peer);
      if (pc.persistentKeepaliveSeconds !== undefined) peer.setPersistentKeepalive(pc.persistentKeepaliveSeconds);
    }
  }
}
