// Path selection per peer (the role of Tailscale's magicsock): which of a
// peer's candidate endpoints carries its WireGuard packets. Candidates come
// from the network map (and from the source of a peer's pings); disco pings
// measure each, the lowest-latency one that answered becomes the WireGuard
// endpoint, heartbeats keep it trusted while traffic flows, and all
// candidates are probed again when it goes quiet. Relay paths (issue 4) slot
// in as one more kind of path.
import { randomBytes } from 'node:crypto';
import { boxKey } from '../crypto/box.js';
import { discoSender, isDisco, openDisco, sealDisco, TXID_LEN, type DiscoMessage } from '../nat/disco.js';
import type { Device } from './device.js';
import { endpointEquals, endpointKey, type Endpoint } from './endpoint.js';

/** Timers of path selection; anchors.md gives Tailscale's, which these follow. Tests shorten them. */
export interface PathTimers {
  /** probe the current path this often while the peer is active (Tailscale: 3 s) */
  heartbeatMs: number;
  /** a path is trusted this long after its last pong (Tailscale: 6.5 s) */
  trustMs: number;
  /** a peer is active when it moved a packet this recently (Tailscale: 45 s) */
  activeMs: number;
  /** probe every candidate this often, to find a better path (Tailscale: 60 s) */
  upgradeMs: number;
  /** a ping with no pong after this is given up (Tailscale: 5 s) */
  pingTimeoutMs: number;
}

export const DEFAULT_PATH_TIMERS: PathTimers = { heartbeatMs: 3000, trustMs: 6500, activeMs: 45_000, upgradeMs: 60_000, pingTimeoutMs: 5000 };

/** A new path must beat the current one by this fraction and by at least 1 ms, so equal paths do not flap. */
const SWITCH_BETTER_FRACTION = 0.2;
const SWITCH_BETTER_MIN_MS = 1;
const MAX_CANDIDATES = 32;

export interface PathPeerConfig {
  nodeKey: Buffer;
  discoKey: Buffer;
  candidates: Endpoint[];
}

export interface PathInfo {
  kind: 'direct' | 'none';
  endpoint: Endpoint | null;
  latencyMs: number | null;
  /** a pong arrived on this path within the trust window */
  trusted: boolean;
  lastPongAgoMs: number | null;
}

export interface PingResult {
  endpoint: Endpoint;
  latencyMs: number;
  kind: 'direct';
}

interface Candidate {
  ep: Endpoint;
  latencyMs: number | null;
  lastPongMs: number | null;
}

interface PeerPaths {
  nodeKey: Buffer;
  hex: string;
  discoKey: Buffer;
  sharedKey: Uint8Array;
  candidates: Map<string, Candidate>;
  best: Candidate | null;
  lastActivityBytes: number;
  lastActiveMs: number;
  lastUpgradeMs: number;
}

interface PendingPing {
  peer: PeerPaths;
  cand: Candidate;
  sentMs: number;
  onPong?: (r: PingResult) => void;
}

export interface DiscoStats {
  rx: number;
  tx: number;
  dropped: { unknownSender: number; badBox: number; unknownTx: number };
}

export class PathManager {
  private readonly peers = new Map<string, PeerPaths>();
  private readonly byDisco = new Map<string, PeerPaths>();
  private readonly pending = new Map<string, PendingPing>();
  private readonly timers: PathTimers;
  private tick: NodeJS.Timeout | null = null;
  readonly stats: DiscoStats = { rx: 0, tx: 0, dropped: { unknownSender: 0, badBox: 0, unknownTx: 0 } };

  constructor(
    private readonly device: Device,
    private readonly disco: { privateKey: Buffer; publicKey: Buffer },
    private readonly nodeKey: Buffer,
    timers: Partial<PathTimers> = {},
  ) {
    this.timers = { ...DEFAULT_PATH_TIMERS, ...timers };
    device.setDiscoHandler((b, src) => this.receive(b, src));
    this.tick = setInterval(() => this.onTick(), this.timers.heartbeatMs);
    this.tick.unref();
  }

  stop(): void {
    if (this.tick) clearInterval(this.tick);
    this.tick = null;
    this.device.setDiscoHandler(null);
    this.pending.clear();
  }

  private now(): number {
    return this.device.clock.now();
  }

  /** Replaces the set of peers; new or changed candidates are probed at once. */
  setPeers(list: PathPeerConfig[]): void {
    const keep = new Set<string>();
    for (const c of list) {
      const hex = c.nodeKey.toString('hex');
      keep.add(hex);
      let p = this.peers.get(hex);
      if (p && !p.discoKey.equals(c.discoKey)) {
        this.byDisco.delete(p.discoKey.toString('hex'));
        p = undefined;
      }
      if (!p) {
        p = { nodeKey: c.nodeKey, hex, discoKey: c.discoKey, sharedKey: boxKey(this.disco.privateKey, c.discoKey), candidates: new Map(), best: null, lastActivityBytes: 0, lastActiveMs: -Infinity, lastUpgradeMs: 0 };
        this.peers.set(hex, p);
        this.byDisco.set(c.discoKey.toString('hex'), p);
      }
      let added = false;
      for (const ep of c.candidates.slice(0, MAX_CANDIDATES)) {
        if (!p.candidates.has(endpointKey(ep))) {
          p.candidates.set(endpointKey(ep), { ep, latencyMs: null, lastPongMs: null });
          added = true;
        }
      }
      const wg = this.device.getPeer(c.nodeKey);
      if (wg && !wg.endpoint && c.candidates[0]) wg.setEndpoint(c.candidates[0]);
      if (added) this.pingAll(p);
    }
    for (const [hex, p] of this.peers) {
      if (keep.has(hex)) continue;
      this.peers.delete(hex);
      this.byDisco.delete(p.discoKey.toString('hex'));
    }
  }

  pathOf(nodeKey: Buffer): PathInfo {
    const p = this.peers.get(nodeKey.toString('hex'));
    const wg = this.device.getPeer(nodeKey);
    const endpoint = wg?.endpoint ?? null;
    if (!p || !endpoint) return { kind: 'none', endpoint: null, latencyMs: null, trusted: false, lastPongAgoMs: null };
    const cand = p.candidates.get(endpointKey(endpoint));
    const ago = cand?.lastPongMs == null ? null : this.now() - cand.lastPongMs;
    return { kind: 'direct', endpoint, latencyMs: cand?.latencyMs ?? null, trusted: ago !== null && ago <= this.timers.trustMs, lastPongAgoMs: ago };
  }

  /** A packet went either way within the active window (sampled every heartbeat). */
  isActive(nodeKey: Buffer): boolean {
    const p = this.peers.get(nodeKey.toString('hex'));
    return p !== undefined && this.now() - p.lastActiveMs <= this.timers.activeMs;
  }

  /** One disco ping over the path the engine uses now (every candidate when it has none yet). */
  ping(nodeKey: Buffer, timeoutMs = this.timers.pingTimeoutMs): Promise<PingResult | null> {
    const p = this.peers.get(nodeKey.toString('hex'));
    if (!p) return Promise.resolve(null);
    return new Promise((resolve) => {
      const txids: string[] = [];
      const done = (r: PingResult | null): void => {
        clearTimeout(timer);
        for (const t of txids) this.pending.delete(t);
        resolve(r);
      };
      const timer = setTimeout(() => done(null), timeoutMs);
      const current = this.device.getPeer(nodeKey)?.endpoint;
      const targets = current ? [this.candidateFor(p, current)] : [...p.candidates.values()];
      for (const c of targets) {
        const t = this.sendPing(p, c, done);
        if (t) txids.push(t);
      }
      if (txids.length === 0) done(null);
    });
  }

  private candidateFor(p: PeerPaths, ep: Endpoint): Candidate {
    const k = endpointKey(ep);
    let c = p.candidates.get(k);
    if (!c) {
      c = { ep: { ...ep }, latencyMs: null, lastPongMs: null };
      if (p.candidates.size < MAX_CANDIDATES) p.candidates.set(k, c);
    }
    return c;
  }

  private pingAll(p: PeerPaths): void {
    for (const c of p.candidates.values()) this.sendPing(p, c);
  }

  private sendPing(p: PeerPaths, cand: Candidate, onPong?: (r: PingResult) => void): string | null {
    const txid = randomBytes(TXID_LEN);
    const key = txid.toString('hex');
    this.pending.set(key, { peer: p, cand, sentMs: this.now(), onPong });
    setTimeout(() => this.pending.delete(key), this.timers.pingTimeoutMs).unref();
    return this.send(p, cand.ep, { type: 'ping', txid, nodeKey: this.nodeKey }) ? key : null;
  }

  private send(p: PeerPaths, ep: Endpoint, m: DiscoMessage): boolean {
    const ok = this.device.sendDatagram(sealDisco(m, this.disco.publicKey, p.sharedKey), ep);
    if (ok) this.stats.tx++;
    return ok;
  }

  /** Never throws: a bad disco packet is counted and dropped. */
  receive(buf: Buffer, src: Endpoint): void {
    if (!isDisco(buf)) return;
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
    if (m.type === 'ping') {
      if (!m.nodeKey.equals(p.nodeKey)) {
        this.stats.dropped.badBox++;
        return;
      }
      this.send(p, src, { type: 'pong', txid: m.txid, src });
      // the peer reached us from src: that is a path back to it worth measuring
      if (!p.candidates.has(endpointKey(src)) && p.candidates.size < MAX_CANDIDATES) {
        const c = this.candidateFor(p, src);
        this.sendPing(p, c);
      }
    } else if (m.type === 'pong') {
      this.onPong(p, m.txid, src);
    } else {
      for (const ep of m.endpoints) this.sendPing(p, this.candidateFor(p, ep));
    }
  }

  private onPong(p: PeerPaths, txid: Buffer, src: Endpoint): void {
    const key = txid.toString('hex');
    const pend = this.pending.get(key);
    if (!pend || pend.peer !== p || !endpointEquals(pend.cand.ep, src)) {
      this.stats.dropped.unknownTx++;
      return;
    }
    this.pending.delete(key);
    const now = this.now();
    const latencyMs = now - pend.sentMs;
    pend.cand.latencyMs = latencyMs;
    pend.cand.lastPongMs = now;
    this.consider(p, pend.cand);
    pend.onPong?.({ endpoint: { ...src }, latencyMs, kind: 'direct' });
  }

  private trusted(c: Candidate | null): boolean {
    return c?.lastPongMs != null && this.now() - c.lastPongMs <= this.timers.trustMs;
  }

  private consider(p: PeerPaths, c: Candidate): void {
    const best = p.best;
    const better =
      !best ||
      best === c ||
      !this.trusted(best) ||
      (best.latencyMs !== null && c.latencyMs !== null && best.latencyMs - c.latencyMs > Math.max(SWITCH_BETTER_MIN_MS, best.latencyMs * SWITCH_BETTER_FRACTION));
    if (!better) return;
    p.best = c;
    const wg = this.device.getPeer(p.nodeKey);
    if (wg && !endpointEquals(wg.endpoint, c.ep)) {
      wg.setEndpoint(c.ep);
      this.device.log(`path to ${p.nodeKey.toString('base64')}: direct ${endpointKey(c.ep)} (${c.latencyMs?.toFixed(1)} ms)`);
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
      if (!this.trusted(p.best) || (active && now - p.lastUpgradeMs >= this.timers.upgradeMs)) {
        // untrusted path or time to look for a better one: probe everything
        if (active || !p.best) {
          p.lastUpgradeMs = now;
          this.pingAll(p);
        }
      } else if (active && p.best) {
        this.sendPing(p, p.best);
      }
    }
  }
}
