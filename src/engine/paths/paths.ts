// Path selection per peer (the role of Tailscale's magicsock): which path
// carries a peer's WireGuard packets. Each peer's WireGuard endpoint is a
// virtual one (../conn/endpoint.ts); the device's bind (pathbind.ts) hands
// packets for it here, and they go out on the best direct candidate that disco
// pings proved, or through the relay while no direct path is trusted.
// Candidates come from the network map, from call-me-maybe and from where
// pings arrive; heartbeats keep a direct path trusted while traffic flows,
// and when one goes unanswered past a few round trips the relay carries a
// copy of each packet too, until a pong re-confirms the path or its trust
// runs out and the relay carries it alone. The jobs live apart: table.ts
// (the peers), probe.ts (pings, pongs, heartbeats, call-me-maybe) and
// choose.ts (which path, and when to switch).
import { boxKey } from '../../crypto/box.js';
import { LazyTimer, type Clock } from '../clock.js';
import type { NetBind } from '../conn/bind.js';
import { endpointKey, relayEndpoint, virtualEndpoint, type Endpoint } from '../conn/endpoint.js';
import type { Device } from '../device/device.js';
import { PathChoice } from './choose.js';
import { Prober } from './probe.js';
import { MAX_CANDIDATES, PathTable } from './table.js';
import {
  DEFAULT_PATH_TIMERS,
  type PathInfo,
  type PathPeerConfig,
  type PathTimers,
  type PathTraffic,
  type Candidate,
  type PeerPaths,
  type PingResult,
  type RelayPaths,
} from './types.js';
import { discoSender, isDisco, sealDisco } from '../../nat/disco.js';
import { BirthdayPunch, isPublicIpv4, type BirthdayStats, type NatMapping } from './birthday.js';
import type { BirthdayBudget } from './birthday-budget.js';
import { openPeerSocket, type PeerSocket, type PeerSocketOpener } from './peer-socket.js';
import { newPunchState } from './punch.js';
import { MESSAGE_INITIATION } from '../device/constants.js';

export { DEFAULT_PATH_TIMERS, type PathInfo, type PathPeerConfig, type PathTimers, type PathTraffic, type PingResult, type RelayPaths } from './types.js';
export type { DiscoStats } from './probe.js';

export interface PathManagerOptions {
  timers?: Partial<PathTimers>;
  relay?: RelayPaths;
  /** our own endpoints, for call-me-maybe */
  localEndpoints?: () => Endpoint[];
  /** path changes, for logs */
  onPathChange?: (nodeKey: Buffer, path: PathInfo) => void;
  /** our NAT's mapping (netcheck): with it, port prediction runs between a hard and an easy NAT (birthday.ts) */
  natMapping?: () => NatMapping | null;
  /** port prediction's budget, random source and sockets (tests) */
  birthday?: { budget?: Partial<BirthdayBudget>; rand?: () => number; openSocket?: PeerSocketOpener; isPublic?: (address: string) => boolean };
  log?: (msg: string) => void;
  /** a disco packet came from a disco key (hex) no peer has: the owner may addPeer() it before the packet is read */
  onUnknownDisco?: (discoHex: string) => void;
}

export class PathManager {
  readonly timers: PathTimers;
  private readonly table = new PathTable();
  private readonly choice: PathChoice;
  private readonly probe: Prober;
  private readonly birthday: BirthdayPunch;
  /** SO_MARK of the main socket, given to per-peer sockets too (PathBind passes it on) */
  private socketMark = 0;
  /** the heartbeat: re-armed each time it fires, stopped by stop() */
  private readonly tick: LazyTimer;
  /** the silence watch (Prober.watch): runs while a peer is active on a trusted direct path */
  private readonly watchTimer: LazyTimer;
  private readonly clock: Clock;
  private readonly relay: RelayPaths | undefined;
  private readonly onUnknownDisco: ((discoHex: string) => void) | undefined;
  /** `both`: packets sent direct and through the relay while their direct path was suspect (also counted in direct) */
  readonly sendStats = { direct: 0, relay: 0, directGuess: 0, noPath: 0, both: 0 };
  /** packets and bytes each way by path; PathBind counts what the UDP socket carries, this class what the relay does */
  readonly traffic: PathTraffic = {
    directSentPackets: 0,
    directSentBytes: 0,
    relaySentPackets: 0,
    relaySentBytes: 0,
    directReceivedPackets: 0,
    directReceivedBytes: 0,
    relayReceivedPackets: 0,
    relayReceivedBytes: 0,
  };

  /**
   * `udp` is the UDP bind under the device's PathBind: direct packets and disco leave through it.
   * `device` is the one whose peers' endpoints this selects.
   */
  constructor(
    private readonly device: Device,
    private readonly udp: Pick<NetBind, 'send' | 'sendTtl'>,
    private readonly disco: { privateKey: Buffer; publicKey: Buffer },
    nodeKey: Buffer,
    opts: PathManagerOptions = {},
  ) {
    this.timers = { ...DEFAULT_PATH_TIMERS, ...opts.timers };
    this.clock = device.clock;
    this.relay = opts.relay;
    this.onUnknownDisco = opts.onUnknownDisco;
    this.choice = new PathChoice(this.clock, this.timers, device, opts.relay, opts.onPathChange);
    const bo = opts.birthday ?? {};
    this.birthday = new BirthdayPunch(
      {
        clock: this.clock,
        nodeKey,
        ourMapping: opts.natMapping ?? (() => null),
        seal: (p, m) => sealDisco(m, disco.publicKey, p.sharedKey),
        sendMain: (buf, ep) => udp.send(buf, ep),
        callMeMaybe: (p, hint) => this.probe.callMeMaybe(p, false, hint),
        trusted: (p) => this.choice.trusted(p.best),
        proven: (p, ep, sock, latencyMs) => this.predicted(p, ep, sock, latencyMs),
        deliver: (p, buf, src, sock) => this.receiveOn(p, buf, src, sock),
        openSocket: bo.openSocket ?? ((onMessage) => openPeerSocket(onMessage, { mark: this.socketMark })),
        isPublic: bo.isPublic ?? isPublicIpv4,
        log: opts.log,
      },
      bo.budget,
      bo.rand,
    );
    this.probe = new Prober({
      clock: this.clock,
      timers: this.timers,
      table: this.table,
      choice: this.choice,
      udp,
      relay: opts.relay,
      disco,
      nodeKey,
      localEndpoints: opts.localEndpoints,
      natHint: () => this.birthday.hint(),
      onCallMeMaybe: (p, nat) => this.birthday.onCallMeMaybe(p, nat),
      unknownPong: (p, txid, src) => this.birthday.onMainPong(p, txid, src),
    });
    const watchMs = Math.max(1, this.timers.silenceMs / 4);
    this.watchTimer = new LazyTimer(this.clock, () => {
      if (this.probe.watch()) this.watchTimer.mod(watchMs);
    });
    this.tick = new LazyTimer(this.clock, () => {
      this.tick.mod(this.timers.heartbeatMs);
      this.probe.beat();
      this.sweepPredicted();
      if (!this.watchTimer.pending && this.probe.watch()) this.watchTimer.mod(watchMs);
    });
    this.tick.mod(this.timers.heartbeatMs);
  }

  get stats(): Prober['stats'] {
    return this.probe.stats;
  }

  /** A relay region just connected: peers homed there without a confirmed direct path have a way now. */
  relayConnected(region: string): void {
    const now = this.clock.now();
    for (const p of this.table.values()) {
      if (p.homeRelay !== region) continue;
      if (!this.choice.direct(p)) this.choice.pathOpened(p, 'relay', now);
      this.probe.punch(p);
    }
  }

  stop(): void {
    this.tick.stop();
    this.watchTimer.stop();
    this.probe.clear();
    this.birthday.stop();
  }

  /** port prediction's counters, for status */
  get birthdayStats(): BirthdayStats {
    return this.birthday.stats;
  }

  /** The main socket's SO_MARK: per-peer sockets carry it too, so they bypass the tunnel. */
  setSocketMark(mark: number): void {
    this.socketMark = mark;
  }

  /** Port prediction proved `ep`: through a per-peer socket (we are the hard side) or the main socket (the easy side). */
  private predicted(p: PeerPaths, ep: Endpoint, sock: PeerSocket | null, latencyMs: number): void {
    const now = this.clock.now();
    const c: Candidate | undefined = sock
      ? { ep: { address: ep.address, port: ep.port }, latencyMs, lastPongMs: now, lastPingMs: now, pingedBack: false, via: sock, unansweredSinceMs: null }
      : (this.table.addCandidate(p, ep) ?? p.candidates.get(endpointKey(ep)));
    if (!c) return;
    const prevPongMs = c.lastPongMs;
    c.latencyMs = latencyMs;
    c.lastPongMs = now;
    this.choice.consider(p, c, prevPongMs);
    if (sock && p.best !== c) this.birthday.release(p);
  }

  /** What a peer's own socket received: disco to probing (answered on that socket), WireGuard to the device as the peer's. */
  private receiveOn(p: PeerPaths, buf: Buffer, src: Endpoint, sock: PeerSocket): void {
    if (buf[0] === 0x6d && isDisco(buf)) return this.probe.receive(buf, src, sock);
    if (this.table.getByHex(p.hex) !== p) return;
    this.traffic.directReceivedPackets++;
    this.traffic.directReceivedBytes += buf.length;
    this.device.receiveDatagram(buf, p.virtual);
  }

  /**
   * Each heartbeat: a per-peer socket whose path no longer carries the peer (another path took over, or its pongs
   * stopped for two heartbeats past the trust window) is closed.
   */
  private sweepPredicted(): void {
    const now = this.clock.now();
    for (const p of this.table.values()) {
      this.birthday.beat(p);
      const sock = this.birthday.socketOf(p);
      if (!sock) continue;
      const c = p.best;
      const dead = c?.via !== sock || c.lastPongMs === null || now - c.lastPongMs > this.timers.trustMs + 2 * this.timers.heartbeatMs;
      if (!dead) continue;
      if (c?.via === sock) p.best = null;
      this.birthday.release(p);
    }
  }

  /** Replaces the set of peers; new candidates are probed at once. Their WireGuard endpoints become virtual. */
  setPeers(list: PathPeerConfig[]): void {
    const keep = new Set<string>();
    for (const c of list) keep.add(this.addPeer(c));
    for (const [hex, p] of this.table.entries())
      if (!keep.has(hex)) {
        this.table.forget(p);
        this.birthday.forget(p);
      }
  }

  /**
   * Adds one peer or updates it (a new disco key starts it afresh); new candidates are probed at once and its WireGuard
   * endpoint becomes virtual. Returns its node key as hex. One peer's cost, whatever the size of the table.
   */
  addPeer(c: PathPeerConfig): string {
    const hex = c.nodeKey.toString('hex');
    let p = this.table.getByHex(hex);
    if (p && !p.discoKey.equals(c.discoKey)) {
      this.table.forget(p);
      this.birthday.forget(p);
      p = undefined;
    }
    const fresh = !p;
    if (!p) {
      p = this.newPeer(c, hex);
      this.table.add(p);
    }
    const hadRelay = !fresh && this.choice.relayUsable(p) !== null;
    p.homeRelay = c.homeRelay;
    let added = false;
    for (const ep of c.candidates.slice(0, MAX_CANDIDATES)) if (this.table.addCandidate(p, ep)) added = true;
    const wg = this.device.getPeer(c.nodeKey);
    if (wg) wg.setEndpoint(p.virtual);
    // the peer learned, or its home relay now one we are connected to: a way its pending initiation cannot have taken
    if (wg && !hadRelay && this.choice.relayUsable(p) && !this.choice.direct(p)) this.choice.pathOpened(p, 'relay', this.clock.now());
    if (added || fresh) this.probe.punch(p);
    return hex;
  }

  /** Forgets one peer: its candidates, timers' view of it and disco key. */
  removePeer(nodeKey: Buffer): void {
    const p = this.table.get(nodeKey);
    if (!p) return;
    this.table.forget(p);
    this.birthday.forget(p);
  }

  /** How many peers path selection holds now. */
  get size(): number {
    return this.table.size;
  }

  private newPeer(c: PathPeerConfig, hex: string): PeerPaths {
    return {
      nodeKey: c.nodeKey,
      hex,
      virtual: virtualEndpoint(c.nodeKey),
      discoKey: c.discoKey,
      sharedKey: boxKey(this.disco.privateKey, c.discoKey),
      homeRelay: null,
      candidates: new Map(),
      best: null,
      relayLatencyMs: null,
      lastActivityBytes: 0,
      lastActiveMs: -Infinity,
      lastFullProbeMs: this.clock.now(),
      lastWakePingMs: -Infinity,
      punch: newPunchState(),
      initiationMs: -Infinity,
      initiationWay: null,
      silence: { txBytes: 0, rxBytes: 0, rxChangedMs: this.clock.now() },
    };
  }

  /** The peer that owns a direct source address, as a virtual endpoint, so WireGuard sees one endpoint per peer. */
  translate(src: Endpoint): Endpoint | null {
    return this.table.translate(src);
  }

  /** The peer's trusted direct endpoint, which sendToPeer would use, or null (relay, guesses, unknown peer). */
  directEndpoint(virtualAddress: string): Endpoint | null {
    const p = this.table.byVirtualAddress(virtualAddress);
    // a path on a per-peer socket is not in the main socket's batch
    return p && !p.best?.via ? this.choice.direct(p) : null;
  }

  /**
   * A datagram of `len` bytes went out on UDP from the batch: over directEndpoint's path (`peer`: counted as sendToPeer
   * counts its own) or to a real endpoint.
   */
  countDirectSend(len: number, peer: boolean): void {
    if (peer) this.sendStats.direct++;
    this.traffic.directSentPackets++;
    this.traffic.directSentBytes += len;
  }

  /** Sends a WireGuard datagram to a peer on its best path: the trusted direct one, else the relay, else a direct guess. */
  sendToPeer(virtualAddress: string, buf: Buffer): boolean {
    const p = this.table.byVirtualAddress(virtualAddress);
    if (!p) {
      this.sendStats.noPath++;
      return false;
    }
    const best = p.best;
    if (buf[0] === MESSAGE_INITIATION) this.noteInitiation(p, best);
    if (best && this.choice.trusted(best)) {
      this.sendStats.direct++;
      let sent = (best.via ?? this.udp).send(buf, best.ep);
      if (sent) {
        this.traffic.directSentPackets++;
        this.traffic.directSentBytes += buf.length;
      }
      // a ping to it went unanswered: the path may be dead since its last pong. The relay carries a copy until a pong
      // re-confirms it (the receiver's replay window drops whichever copy comes second), so a dead path costs
      // lostAfterMs of traffic, not the rest of the trust window; Tailscale's magicsock sends both ways likewise
      // while the direct path is not trusted
      const region = this.choice.suspect(best) ? this.choice.relayUsable(p) : null;
      if (region && this.relay!.send(region, p.nodeKey, buf)) {
        this.sendStats.both++;
        this.traffic.relaySentPackets++;
        this.traffic.relaySentBytes += buf.length;
        sent = true;
      }
      return sent;
    }
    // no proven direct path: the relay carries it. Only with no relay to carry
    // it does the best direct guess get it instead; a copy to both would double
    // the cost of every relayed packet (measured: 73 % → 58 % CPU at the sender)
    // and a direct path proves itself by its pong, not by data.
    let sent = false;
    this.probe.wake(p);
    this.birthday.onRelayed(p);
    const region = this.choice.relayUsable(p);
    const guess = region ? null : this.choice.guess(p);
    if (buf[0] === MESSAGE_INITIATION) p.initiationWay = region ? 'relay' : guess;
    if (guess) {
      this.sendStats.directGuess++;
      if (this.udp.send(buf, guess.ep)) {
        this.traffic.directSentPackets++;
        this.traffic.directSentBytes += buf.length;
        sent = true;
      }
    }
    if (region && this.relay!.send(region, p.nodeKey, buf)) {
      this.sendStats.relay++;
      this.traffic.relaySentPackets++;
      this.traffic.relaySentBytes += buf.length;
      sent = true;
    }
    if (!sent) this.sendStats.noPath++;
    return sent;
  }

  /** A handshake initiation leaves for `p`: when, and (on a trusted direct path) by `best`; the relay branch corrects the way. */
  private noteInitiation(p: PeerPaths, best: Candidate | null): void {
    p.initiationMs = this.clock.now();
    p.initiationWay = best && this.choice.trusted(best) ? best : null;
  }

  pathOf(nodeKey: Buffer): PathInfo {
    const p = this.table.get(nodeKey);
    return p ? this.choice.pathOf(p) : { kind: 'none' };
  }

  /** How many peers the engine reaches directly and how many through a relay now (as pathOf says; `none` counts in neither). */
  pathCounts(): { direct: number; relay: number } {
    const n = { direct: 0, relay: 0 };
    for (const p of this.table.values()) {
      const kind = this.choice.pathOf(p).kind;
      if (kind !== 'none') n[kind]++;
    }
    return n;
  }

  /** A packet went either way within the active window (sampled every heartbeat). */
  isActive(nodeKey: Buffer): boolean {
    const p = this.table.get(nodeKey);
    return p !== undefined && this.choice.isActive(p);
  }

  /** One disco ping over the path the engine uses now (every candidate and the relay while it has no trusted one). */
  ping(nodeKey: Buffer, timeoutMs = this.timers.pingTimeoutMs): Promise<PingResult | null> {
    const p = this.table.get(nodeKey);
    return p ? this.probe.ping(p, timeoutMs) : Promise.resolve(null);
  }

  /** A packet a relay brought from the peer with node key `src`: disco goes to probing, WireGuard to the device. */
  receiveRelayed(region: string, src: Buffer, pkt: Buffer): void {
    if (pkt[0] === 0x6d && isDisco(pkt)) return this.receive(pkt, relayEndpoint(region));
    this.traffic.relayReceivedPackets++;
    this.traffic.relayReceivedBytes += pkt.length;
    this.device.receiveDatagram(pkt, virtualEndpoint(src));
  }

  /** A disco packet, from a direct address or (src = relayEndpoint(region)) from the relay. Never throws. */
  receive(buf: Buffer, src: Endpoint): void {
    this.knowSender(buf);
    this.probe.receive(buf, src);
  }

  /** A disco packet from a disco key the table lacks: the owner may add the peer (a lazy peer starting to talk) first. */
  private knowSender(buf: Buffer): void {
    const hook = this.onUnknownDisco;
    if (hook === undefined) return;
    const hex = discoSender(buf).toString('hex');
    if (!this.table.byDiscoKey(hex)) hook(hex);
  }
}
