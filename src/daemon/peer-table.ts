// The compact table of the map's peers that the engine reads to create a
// WireGuard peer on demand (lazy peers, docs/architecture.md): per peer its
// keys, parsed AllowedIPs, endpoint candidates and home relay, found by node
// key, by disco key (a disco packet from it) and by address (a packet from the
// TUN for it). An engine peer with its timers, keypairs and path state exists
// only for peers that talk; this table is what every other peer costs.
import { AllowedIps } from '../engine/device/allowedips.js';
import type { Endpoint } from '../engine/conn/endpoint.js';
import { ipToBytes } from '../engine/device/ippacket.js';
import type { Peer } from '../engine/device/peer.js';

/** One prefix of a peer's AllowedIPs, parsed and canonical. */
export interface PeerPrefix {
  address: string;
  bits: number;
  family: 4 | 6;
}

/** One peer of the map as the engine needs it to create its WireGuard peer. */
export interface TablePeer {
  /** base64, as the map names it */
  nodeKeyText: string;
  nodeKey: Buffer;
  hex: string;
  discoKey: Buffer;
  discoHex: string;
  prefixes: PeerPrefix[];
  candidates: Endpoint[];
  homeRelay: string | null;
  /** the fields above as one string: a map that leaves it equal changes nothing for this peer */
  signature: string;
  /** an engine peer (WireGuard and path state) exists for it now */
  active: boolean;
  /** that engine peer while active (what a packet routed through the table goes to, with no lookup by key) */
  engine: Peer | null;
  /** rx + tx bytes of its engine peer at the last idle check, and when they last changed (device clock ms) */
  lastBytes: number;
  lastUsedMs: number;
}

/** The address bytes as a Map key: full-length prefixes (a peer's own addresses, nearly all of them) skip the trie. */
const hostKey = (b: Buffer, off: number, len: number): string => b.toString('latin1', off, off + len);

export class PeerTable {
  private readonly byText = new Map<string, TablePeer>();
  private readonly byHex = new Map<string, TablePeer>();
  private readonly byDisco = new Map<string, TablePeer>();
  /** /32 prefixes by their address as a number, /128 by their bytes: a peer's own addresses, nearly all prefixes */
  private readonly hosts4 = new Map<number, TablePeer>();
  private readonly hosts6 = new Map<string, TablePeer>();
  /** shorter prefixes (subnet routes, an exit node's default routes): longest-prefix match */
  private readonly routes = new AllowedIps<TablePeer>();
  private routeCount = 0;

  get size(): number {
    return this.byText.size;
  }

  get(nodeKeyText: string): TablePeer | undefined {
    return this.byText.get(nodeKeyText);
  }

  getByHex(hex: string): TablePeer | undefined {
    return this.byHex.get(hex);
  }

  getByDisco(hex: string): TablePeer | undefined {
    return this.byDisco.get(hex);
  }

  values(): IterableIterator<TablePeer> {
    return this.byText.values();
  }

  /** The peer whose AllowedIPs hold the address of `len` bytes at `off` in `b` (longest prefix wins), if any. */
  lookupAt(b: Buffer, off: number, len: number): TablePeer | undefined {
    if (off < 0 || off + len > b.length) return undefined;
    const host = len === 4 ? this.hosts4.get(b.readUInt32BE(off)) : this.hosts6.get(hostKey(b, off, len));
    return host ?? (this.routeCount > 0 ? this.routes.lookupAt(b, off, len) : undefined);
  }

  /** Adds `p`, or replaces the entry with its node key (the caller has taken the old one's engine peer down). */
  set(p: TablePeer): void {
    const old = this.byText.get(p.nodeKeyText);
    if (old) this.delete(old);
    this.byText.set(p.nodeKeyText, p);
    this.byHex.set(p.hex, p);
    this.byDisco.set(p.discoHex, p);
    for (const x of p.prefixes) {
      const b = addressBytes(x);
      if (x.bits === 32 && b.length === 4) this.hosts4.set(b.readUInt32BE(0), p);
      else if (x.bits === 128) this.hosts6.set(hostKey(b, 0, 16), p);
      else {
        this.routes.insert(x.address, x.bits, p);
        this.routeCount++;
      }
    }
  }

  delete(p: TablePeer): void {
    if (this.byText.get(p.nodeKeyText) !== p) return;
    this.byText.delete(p.nodeKeyText);
    this.byHex.delete(p.hex);
    if (this.byDisco.get(p.discoHex) === p) this.byDisco.delete(p.discoHex);
    for (const x of p.prefixes) {
      const b = addressBytes(x);
      if (x.bits === 32 && b.length === 4) {
        if (this.hosts4.get(b.readUInt32BE(0)) === p) this.hosts4.delete(b.readUInt32BE(0));
      } else if (x.bits === 128) {
        const k = hostKey(b, 0, 16);
        if (this.hosts6.get(k) === p) this.hosts6.delete(k);
      } else if (this.routes.remove(x.address, x.bits, p)) this.routeCount--;
    }
  }
}

function addressBytes(x: PeerPrefix): Buffer {
  return ipToBytes(x.address);
}
