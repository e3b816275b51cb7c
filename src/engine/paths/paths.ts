// Path selection per peer (the role of Tailscale's magicsock): which path
// carries a peer's WireGuard packets. Each peer's WireGuard endpoint is a
// virtual one (../conn/endpoint.ts); its packets come here and go out on the best
// direct candidate that disco pings proved, or through the relay while no
// direct path is trusted (on both while a direct path is unproven). Candidates
// come from the network map, from call-me-maybe and from where pings arrive;
// heartbeats keep a direct path trusted while traffic flows, and when they stop
// answering traffic moves to the relay within a few seconds.
import { randomBytes } from 'node:crypto';
import { boxKey } from '../../crypto/box.js';
import { discoSender, openDisco, sealDisco, TXID_LEN, type DiscoMessage } from '../../nat/disco.js';
import { LazyTimer, type Clock } from '../clock.js';
import type { Device } from '../device/device.js';
import { endpointEquals, endpointKey, relayRegionOf, virtualEndpoint, type Endpoint } from '../conn/endpoint.js';

/**
 * Timers of path selection, all on the device's Clock. Tailscale's magicsock (tailscale/wgengine/magicsock) uses
 * heartbeatInterval = 3 s, trustUDPAddrDuration = 6.5 s, sessionActiveTimeout = 45 s, upgradeInterval = 1 min and
 * pingTimeoutDuration = 5 s; meshctl probes faster so that a dead direct path moves to the relay within 5 s. Tests shorten them.
 */
export interface PathTimers {
  /** probe the current direct path this often while the peer is active */
  heartbeatMs: number;
  /** a direct path is trusted this long after its last pong (about two missed heartbeats) */
  trustMs: number;
  /** a peer is active when it moved a packet this recently (Tailscale's sessionActiveTimeout: 45 s) */
  activeMs: number;
  /** with a trusted direct path, probe every candidate this often for a better one (Tailscale's upgradeInterval: 1 min) */
  upgradeMs: number;
  /** without one, try every candidate and call-me-maybe this often (hole punching) */
  retryDirectMs: number;
  /** a ping with no pong after this is given up (Tailscale's pingTimeoutDuration: 5 s) */
  pingTimeoutMs: number;
}

export const DEFAULT_PATH_TIMERS: PathTimers = {
  heartbeatMs: 1500,
  trustMs: 3500,
  activeMs: 45_000,
  upgradeMs: 60_000,
  retryDirectMs: 10_000,
  pingTimeoutMs: 5000,
};

/** A new direct path must beat the current one by this fraction and by at least 1 ms, so equal paths do not flap. */
const SWITCH_BETTER_FRACTION = 0.2;
const SWITCH_BETTER_MIN_MS = 1;
const MAX_CANDIDATES = 32;
/**
 * A peer's ping from an address we have no proven path to gets a ping back:
 * our earlier ping may have died at the peer's NAT before the peer's own packet
 * opened it (docs/nat.md). The first ping back after one of our own probes goes
 * at once, however soon the peer's ping came (the race is usually tens of ms);
 * further ones at most this often per address.
 */
const PING_BACK_MIN_MS = 250;

/** How the engine reaches relays; the daemon supplies it (the engine imports no relay code). */
export interface RelayPaths {
  send(region: string, dst: Buffer, pkt: Buffer): boolean;
  connected(region: string): boolean;
}

export interface PathPeerConfig {
  nodeKey: Buffer;
  discoKey: Buffer;
  candidates: Endpoint[];
  homeRelay: string | null;
}

export type PathInfo =
  | { kind: 'direct'; endpoint: Endpoint; latencyMs: number | null; trusted: boolean }
  | { kind: 'relay'; region: string; latencyMs: number | null }
  | { kind: 'none' };

export type PingResult = { kind: 'direct'; endpoint: Endpoint; latencyMs: number } | { kind: 'relay'; region: string; latencyMs: number };

interface Candidate {
  ep: Endpoint;
  latencyMs: number | null;
  lastPongMs: number | null;
  lastPingMs: number;
  /** the last ping to it was a ping back */
  pingedBack: boolean;
}

interface PeerPaths {
  nodeKey: Buffer;
  hex: string;
  /** the peer's WireGuard endpoint, made once: the per-packet paths reuse it */
  virtual: Endpoint;
  discoKey: Buffer;
  sharedKey: Uint8Array;
  homeRelay: string | null;
  candidates: Map<string, Candidate>;
  best: Candidate | null;
  relayLatencyMs: number | null;
  lastActivityBytes: number;
  lastActiveMs: number;
  lastFullProbeMs: number;
  lastWakePingMs: number;
}

interface PendingPing {
  peer: PeerPaths;
  /** null: sent through the relay */
  cand: Candidate | null;
  region: string | null;
  sentMs: number;
  onPong?: (r: PingResult) => void;
}

export interface DiscoStats {
  rx: number;
  tx: number;
  dropped: { unknownSender: number; badBox: number; unknownTx: number };
  callMeMaybeSent: number;
  callMeMaybeReceived: number;
}

export interface PathManagerOptions {
  timers?: Partial<PathTimers>;
  relay?: RelayPaths;
  /** our own endpoints, for call-me-maybe */
  localEndpoints?: () => Endpoint[];
  /** path changes, for logs */
  onPathChange?: (nodeKey: Buffer, path: PathInfo) => void;
}

export class PathManager {
  private readonly peers = new Map<string, PeerPaths>();
  private readonly byDisco = new Map<string, PeerPaths>();
  /** address → port → peer: the per-packet lookup of who sent a datagram, with no string building */
  private readonly byCandidate = new Map<string, Map<number, PeerPaths>>();
  /** virtual endpoint address → peer */
  private readonly byVirtual = new Map<string, PeerPaths>();
  private readonly pending = new Map<string, PendingPing>();
  readonly timers: PathTimers;
  /** the heartbeat: re-armed each time it fires, stopped by stop() */
  private readonly tick: LazyTimer;
  private readonly clock: Clock;
  private udpSend: (buf: Buffer, ep: Endpoint) => boolean = () => false;
  readonly stats: DiscoStats = { rx: 0, tx: 0, dropped: { unknownSender: 0, badBox: 0, unknownTx: 0 }, callMeMaybeSent: 0, callMeMaybeReceived: 0 };
  readonly sendStats = { direct: 0, relay: 0, directGuess: 0, noPath: 0 };

  constructor(
    private readonly device: Device,
    private readonly disco: { privateKey: Buffer; publicKey: Buffer },
    private readonly nodeKey: Buffer,
    private readonly opts: PathManagerOptions = {},
  ) {
    this.timers = { ...DEFAULT_PATH_TIMERS, ...opts.timers };
    this.clock = device.clock;
    this.tick = new LazyTimer(this.clock, () => {
      this.tick.mod(this.timers.heartbeatMs);
      this.onTick();
    });
    this.tick.mod(this.timers.heartbeatMs);
  }

  /** A relay region just connected: peers homed there have a path now. */
  relayConnected(region: string): void {
    for (const p of this.peers.values()) {
      if (p.homeRelay !== region) continue;
      this.device.getPeer(p.nodeKey)?.pathOpened();
      this.callMeMaybe(p);
    }
  }

  /** How disco and direct packets leave: the raw UDP socket (set by PathBind). */
  setUdpSender(send: (buf: Buffer, ep: Endpoint) => boolean): void {
    this.udpSend = send;
  }

  stop(): void {
    this.tick.stop();
    this.pending.clear();
  }

  private now(): number {
    return this.clock.now();
  }

  /** Replaces the set of peers; new candidates are probed at once. Their WireGuard endpoints become virtual. */
  setPeers(list: PathPeerConfig[]): void {
    const keep = new Set<string>();
    for (const c of list) {
      const hex = c.nodeKey.toString('hex');
      keep.add(hex);
      let p = this.peers.get(hex);
      if (p && !p.discoKey.equals(c.discoKey)) {
        this.forget(p);
        p = undefined;
      }
      const fresh = !p;
      if (!p) {
        p = {
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
          lastFullProbeMs: this.now(),
          lastWakePingMs: -Infinity,
        };
        this.peers.set(hex, p);
        this.byVirtual.set(p.virtual.address, p);
        this.byDisco.set(c.discoKey.toString('hex'), p);
      }
      p.homeRelay = c.homeRelay;
      let added = false;
      for (const ep of c.candidates.slice(0, MAX_CANDIDATES)) if (this.addCandidate(p, ep)) added = true;
      const wg = this.device.getPeer(c.nodeKey);
      if (wg) wg.setEndpoint(p.virtual);
      if (added || fresh) {
        this.pingAll(p);
        this.callMeMaybe(p);
      }
    }
    for (const [hex, p] of this.peers) if (!keep.has(hex)) this.forget(p);
  }

  private forget(p: PeerPaths): void {
    this.peers.delete(p.hex);
    this.byVirtual.delete(p.virtual.address);
    this.byDisco.delete(p.discoKey.toString('hex'));
    for (const c of p.candidates.values()) {
      const ports = this.byCandidate.get(c.ep.address);
      if (ports?.get(c.ep.port) === p) ports.delete(c.ep.port);
      if (ports?.size === 0) this.byCandidate.delete(c.ep.address);
    }
  }

  private addCandidate(p: PeerPaths, ep: Endpoint): Candidate | null {
    const k = endpointKey(ep);
    const have = p.candidates.get(k);
    if (have) return null;
    if (p.candidates.size >= MAX_CANDIDATES) return null;
    const c: Candidate = { ep: { address: ep.address, port: ep.port }, latencyMs: null, lastPongMs: null, lastPingMs: -Infinity, pingedBack: false };
    p.candidates.set(k, c);
    let ports = this.byCandidate.get(c.ep.address);
    if (!ports) this.byCandidate.set(c.ep.address, (ports = new Map()));
    ports.set(c.ep.port, p);
    return c;
  }

  /** The peer that owns a direct source address, as a virtual endpoint, so WireGuard sees one endpoint per peer. */
  translate(src: Endpoint): Endpoint | null {
    return this.byCandidate.get(src.address)?.get(src.port)?.virtual ?? null;
  }

  private trusted(c: Candidate | null): boolean {
    return c?.lastPongMs != null && this.now() - c.lastPongMs <= this.timers.trustMs;
  }

  private relayUsable(p: PeerPaths): string | null {
    return p.homeRelay && this.opts.relay?.connected(p.homeRelay) ? p.homeRelay : null;
  }

  /** The peer's trusted direct endpoint, which sendToPeer would use, or null (relay, guesses, unknown peer). */
  directEndpoint(virtualAddress: string): Endpoint | null {
    const p = this.byVirtual.get(virtualAddress);
    return p?.best && this.trusted(p.best) ? p.best.ep : null;
  }

  /** A packet went out over directEndpoint's path (counted as sendToPeer counts its own). */
  countDirectSend(): void {
    this.sendStats.direct++;
  }

  /** Sends a WireGuard datagram to a peer on its best path. */
  sendToPeer(virtualAddress: string, buf: Buffer): boolean {
    const p = this.byVirtual.get(virtualAddress);
    if (!p) {
      this.sendStats.noPath++;
      return false;
    }
    if (p.best && this.trusted(p.best)) {
      this.sendStats.direct++;
      return this.udpSend(buf, p.best.ep);
    }
    // no proven direct path: the relay carries it. Only with no relay to carry
    // it does the best direct guess get it instead; a copy to both would double
    // the cost of every relayed packet (measured: 73 % → 58 % CPU at the sender)
    // and a direct path proves itself by its pong, not by data.
    let sent = false;
    if (p.best && this.now() - p.lastWakePingMs >= this.timers.heartbeatMs) {
      // traffic after a quiet spell: re-prove the last direct path now rather than at the next beat
      p.lastWakePingMs = this.now();
      this.sendPing(p, p.best);
    }
    const region = this.relayUsable(p);
    const guess = region ? null : (p.best ?? (p.candidates.size ? p.candidates.values().next().value! : null));
    if (guess) {
      sent = this.udpSend(buf, guess.ep) || sent;
      this.sendStats.directGuess++;
    }
    if (region && this.opts.relay!.send(region, p.nodeKey, buf)) {
      this.sendStats.relay++;
      sent = true;
    }
    if (!sent) this.sendStats.noPath++;
    return sent;
  }

  pathOf(nodeKey: Buffer): PathInfo {
    const p = this.peers.get(nodeKey.toString('hex'));
    if (!p) return { kind: 'none' };
    if (p.best && this.trusted(p.best)) return { kind: 'direct', endpoint: p.best.ep, latencyMs: p.best.latencyMs, trusted: true };
    // idle with a direct path that answered before: the next packet re-proves it at once (sendToPeer)
    if (p.best && !this.isActive(p.nodeKey)) return { kind: 'direct', endpoint: p.best.ep, latencyMs: p.best.latencyMs, trusted: false };
    const region = this.relayUsable(p);
    if (region) return { kind: 'relay', region, latencyMs: p.relayLatencyMs };
    return { kind: 'none' };
  }

  /** A packet went either way within the active window (sampled every heartbeat). */
  isActive(nodeKey: Buffer): boolean {
    const p = this.peers.get(nodeKey.toString('hex'));
    return p !== undefined && this.now() - p.lastActiveMs <= this.timers.activeMs;
  }

  /** One disco ping over the path the engine uses now (every candidate and the relay while it has no trusted one). */
  ping(nodeKey: Buffer, timeoutMs = this.timers.pingTimeoutMs): Promise<PingResult | null> {
    const p = this.peers.get(nodeKey.toString('hex'));
    if (!p) return Promise.resolve(null);
    return new Promise((resolve) => {
      const txids: string[] = [];
      const done = (r: PingResult | null): void => {
        this.clock.clearTimeout(timer);
        for (const t of txids) this.pending.delete(t);
        resolve(r);
      };
      const timer = this.clock.setTimeout(() => done(null), timeoutMs);
      if (p.best && this.trusted(p.best)) {
        const t = this.sendPing(p, p.best, done);
        if (t) txids.push(t);
      } else {
        for (const c of p.candidates.values()) {
          const t = this.sendPing(p, c, done);
          if (t) txids.push(t);
        }
        const t = this.sendRelayPing(p, done);
        if (t) txids.push(t);
      }
      if (txids.length === 0) done(null);
    });
  }

  private pingAll(p: PeerPaths): void {
    p.lastFullProbeMs = this.now();
    for (const c of p.candidates.values()) this.sendPing(p, c);
  }

  private newTx(pend: PendingPing): Buffer {
    const txid = randomBytes(TXID_LEN);
    const key = txid.toString('hex');
    this.pending.set(key, pend);
    this.clock.setTimeout(() => this.pending.delete(key), this.timers.pingTimeoutMs);
    return txid;
  }

  private sendPing(p: PeerPaths, cand: Candidate, onPong?: (r: PingResult) => void): string | null {
    const txid = this.newTx({ peer: p, cand, region: null, sentMs: this.now(), onPong });
    cand.lastPingMs = this.now();
    cand.pingedBack = false;
    return this.sendDirect(p, cand.ep, { type: 'ping', txid, nodeKey: this.nodeKey }) ? txid.toString('hex') : null;
  }

  private sendRelayPing(p: PeerPaths, onPong?: (r: PingResult) => void): string | null {
    const region = this.relayUsable(p);
    if (!region) return null;
    const txid = this.newTx({ peer: p, cand: null, region, sentMs: this.now(), onPong });
    return this.sendViaRelay(p, region, { type: 'ping', txid, nodeKey: this.nodeKey }) ? txid.toString('hex') : null;
  }

  private sendDirect(p: PeerPaths, ep: Endpoint, m: DiscoMessage): boolean {
    const ok = this.udpSend(sealDisco(m, this.disco.publicKey, p.sharedKey), ep);
    if (ok) this.stats.tx++;
    return ok;
  }

  private sendViaRelay(p: PeerPaths, region: string, m: DiscoMessage): boolean {
    const ok = this.opts.relay?.send(region, p.nodeKey, sealDisco(m, this.disco.publicKey, p.sharedKey)) ?? false;
    if (ok) this.stats.tx++;
    return ok;
  }

  /** Tells the peer, over the relay, every address we can be reached at: both sides then ping each other at once (hole punching). */
  private callMeMaybe(p: PeerPaths): void {
    const region = this.relayUsable(p);
    const eps = this.opts.localEndpoints?.() ?? [];
    if (!region || eps.length === 0) return;
    if (this.sendViaRelay(p, region, { type: 'callMeMaybe', endpoints: eps })) this.stats.callMeMaybeSent++;
  }

  /** A disco packet, from a direct address or (src = relayEndpoint(region)) from the relay. Never throws. */
  receive(buf: Buffer, src: Endpoint): void {
    this.stats.rx++;
    const p = this.byDisco.get(discoSender(buf).toString('hex'));
    if (!p) {
      this.stats.dropped.unknownSender++;
      return;
    }
    const m = openDisco(buf, p.sharedKey);
    if (!m) {
      this.stats.dropped.badBox++;
      return;
    }
    const viaRelay = relayRegionOf(src);
    if (m.type === 'ping') {
      if (!m.nodeKey.equals(p.nodeKey)) {
        this.stats.dropped.badBox++;
        return;
      }
      if (viaRelay) this.sendViaRelay(p, viaRelay, { type: 'pong', txid: m.txid, src: { address: '0.0.0.0', port: 0 } });
      else {
        this.sendDirect(p, src, { type: 'pong', txid: m.txid, src });
        // the peer reached us from src, so its NAT now lets us in from there: measure that path now,
        // not at the next full probe (retryDirectMs), even when src was a candidate already
        const c = this.addCandidate(p, src) ?? p.candidates.get(endpointKey(src));
        if (c && !this.trusted(c) && (!c.pingedBack || this.now() - c.lastPingMs >= PING_BACK_MIN_MS)) {
          this.sendPing(p, c);
          c.pingedBack = true;
        }
      }
    } else if (m.type === 'pong') {
      this.onPong(p, m.txid, src);
    } else {
      this.stats.callMeMaybeReceived++;
      for (const ep of m.endpoints) this.addCandidate(p, ep);
      this.pingAll(p);
    }
  }

  private onPong(p: PeerPaths, txid: Buffer, src: Endpoint): void {
    const key = txid.toString('hex');
    const pend = this.pending.get(key);
    const region = relayRegionOf(src);
    const matches = pend && pend.peer === p && (pend.cand ? !region && endpointEquals(pend.cand.ep, src) : region === pend.region);
    if (!pend || !matches) {
      this.stats.dropped.unknownTx++;
      return;
    }
    this.pending.delete(key);
    const now = this.now();
    const latencyMs = now - pend.sentMs;
    if (pend.cand) {
      pend.cand.latencyMs = latencyMs;
      pend.cand.lastPongMs = now;
      this.consider(p, pend.cand);
      pend.onPong?.({ kind: 'direct', endpoint: { ...src }, latencyMs });
    } else {
      p.relayLatencyMs = latencyMs;
      pend.onPong?.({ kind: 'relay', region: pend.region!, latencyMs });
    }
  }

  private consider(p: PeerPaths, c: Candidate): void {
    const best = p.best;
    const wasTrusted = best !== c && this.trusted(best);
    const better =
      !best ||
      best === c ||
      !wasTrusted ||
      (best.latencyMs !== null &&
        c.latencyMs !== null &&
        best.latencyMs - c.latencyMs > Math.max(SWITCH_BETTER_MIN_MS, best.latencyMs * SWITCH_BETTER_FRACTION));
    if (!better) return;
    const changed = best !== c || !wasTrusted;
    p.best = c;
    if (changed) {
      this.opts.onPathChange?.(p.nodeKey, this.pathOf(p.nodeKey));
      this.device.getPeer(p.nodeKey)?.pathOpened();
    }
  }

  private onTick(): void {
    const now = this.now();
    for (const p of this.peers.values()) {
      const wg = this.device.getPeer(p.nodeKey);
      const bytes = wg ? wg.txBytes + wg.rxBytes : 0;
      if (bytes !== p.lastActivityBytes) {
        p.lastActivityBytes = bytes;
        p.lastActiveMs = now;
      }
      const active = now - p.lastActiveMs <= this.timers.activeMs;
      const wasTrusted = p.best !== null && p.best.lastPongMs !== null && now - p.best.lastPongMs - this.timers.heartbeatMs <= this.timers.trustMs;
      if (p.best && this.trusted(p.best)) {
        if (!active) continue;
        if (now - p.lastFullProbeMs >= this.timers.upgradeMs) this.pingAll(p);
        else this.sendPing(p, p.best);
      } else {
        if (wasTrusted) this.opts.onPathChange?.(p.nodeKey, this.pathOf(p.nodeKey));
        // no proven direct path: keep trying the last good one each beat, everything (with hole punching) less often
        if (p.best) this.sendPing(p, p.best);
        if (now - p.lastFullProbeMs >= this.timers.retryDirectMs && (active || p.best === null)) {
          this.pingAll(p);
          this.callMeMaybe(p);
        }
        if (active) this.sendRelayPing(p);
      }
    }
  }
}
