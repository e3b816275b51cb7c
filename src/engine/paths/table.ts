// The peers path selection knows, indexed every way a packet finds them: by
// node key, by disco key (who sealed a disco packet), by virtual endpoint (a
// WireGuard packet the device sends) and by candidate address (who sent a
// WireGuard datagram), the last without building a string per packet.
import { endpointKey, type Endpoint } from '../conn/endpoint.js';
import type { Candidate, PeerPaths } from './types.js';

/** At most this many direct candidates per peer: the map and call-me-maybe are hostile input. */
export const MAX_CANDIDATES = 32;

export class PathTable {
  private readonly peers = new Map<string, PeerPaths>();
  private readonly byDisco = new Map<string, PeerPaths>();
  /** address → port → peer: the per-packet lookup of who sent a datagram, with no string building */
  private readonly byCandidate = new Map<string, Map<number, Translation>>();
  /** virtual endpoint address → peer */
  private readonly byVirtual = new Map<string, PeerPaths>();

  get(nodeKey: Buffer): PeerPaths | undefined {
    return this.peers.get(nodeKey.toString('hex'));
  }

  getByHex(hex: string): PeerPaths | undefined {
    return this.peers.get(hex);
  }

  /** the peer whose disco key (hex) sealed a packet */
  byDiscoKey(hex: string): PeerPaths | undefined {
    return this.byDisco.get(hex);
  }

  /** the peer a virtual endpoint's address stands for */
  byVirtualAddress(address: string): PeerPaths | undefined {
    return this.byVirtual.get(address);
  }

  get size(): number {
    return this.peers.size;
  }

  values(): IterableIterator<PeerPaths> {
    return this.peers.values();
  }

  entries(): IterableIterator<[string, PeerPaths]> {
    return this.peers.entries();
  }

  add(p: PeerPaths): void {
    this.peers.set(p.hex, p);
    this.byVirtual.set(p.virtual.address, p);
    this.byDisco.set(p.discoKey.toString('hex'), p);
  }

  forget(p: PeerPaths): void {
    this.peers.delete(p.hex);
    this.byVirtual.delete(p.virtual.address);
    this.byDisco.delete(p.discoKey.toString('hex'));
    for (const c of p.candidates.values()) {
      const ports = this.byCandidate.get(c.ep.address);
      if (ports?.get(c.ep.port)?.peer === p) ports.delete(c.ep.port);
      if (ports?.size === 0) this.byCandidate.delete(c.ep.address);
    }
  }

  /**
   * A new candidate of `p` (null: known already, or the peer has MAX_CANDIDATES none of which may go). A peer behind a
   * NAT that keeps giving it new mappings (a router rebooted every night) brings a new address each time: when full,
   * the candidate that answered least recently (never, first) makes room, never the path in use.
   */
  addCandidate(p: PeerPaths, ep: Endpoint): Candidate | null {
    const k = endpointKey(ep);
    const have = p.candidates.get(k);
    if (have) return null;
    if (p.candidates.size >= MAX_CANDIDATES && !this.evictStalest(p)) return null;
    const c: Candidate = {
      ep: { address: ep.address, port: ep.port },
      latencyMs: null,
      lastPongMs: null,
      lastPingMs: -Infinity,
      pingedBack: false,
      unansweredSinceMs: null,
    };
    p.candidates.set(k, c);
    let ports = this.byCandidate.get(c.ep.address);
    if (!ports) this.byCandidate.set(c.ep.address, (ports = new Map()));
    // made once per candidate, so translating a datagram's source allocates nothing
    ports.set(c.ep.port, { peer: p, virtual: { address: p.virtual.address, port: p.virtual.port, direct: c.ep } });
    return c;
  }

  /** Forgets the candidate of `p` whose last pong is oldest (no pong: oldest of all; ties: the first added), not p.best. */
  private evictStalest(p: PeerPaths): boolean {
    let victim: [string, Candidate] | null = null;
    for (const e of p.candidates) {
      if (e[1] === p.best) continue;
      if (!victim || (e[1].lastPongMs ?? -Infinity) < (victim[1].lastPongMs ?? -Infinity)) victim = e;
    }
    if (!victim) return false;
    const [k, c] = victim;
    p.candidates.delete(k);
    const ports = this.byCandidate.get(c.ep.address);
    if (ports?.get(c.ep.port)?.peer === p) ports.delete(c.ep.port);
    if (ports?.size === 0) this.byCandidate.delete(c.ep.address);
    return true;
  }

  /** The peer that owns a direct source address, as a virtual endpoint, so WireGuard sees one endpoint per peer. */
  translate(src: Endpoint): Endpoint | null {
    return this.byCandidate.get(src.address)?.get(src.port)?.virtual ?? null;
  }
}

/** A candidate address and what a datagram from it is attributed to: its peer's virtual endpoint, naming the address. */
interface Translation {
  peer: PeerPaths;
  virtual: Endpoint;
}
