// The access policy's accept rules (netmap FilterRule) compiled for the packet
// path. Destinations go into a binary trie over address bits; each trie node
// holds the rule entries of its prefix (port range, protocol set, source set),
// and a lookup walks the destination's path once, testing the entries met on
// the way. Sources are a second trie per distinct source list (shared between
// rules that name the same sources). A lookup allocates nothing.
import { AllowedIps } from './allowedips.js';
import { ipToBytes } from './ippacket.js';
import type { FilterRule } from '../../netmap/types.js';
import { parsePrefix } from '../../util/netaddr.js';

export const PROTO_ICMP = 1;
export const PROTO_TCP = 6;
export const PROTO_UDP = 17;
export const PROTO_ICMPV6 = 58;
export const PROTO_SCTP = 132;

/** What a rule with no protocols accepts, as Tailscale does. */
const DEFAULT_PROTOCOLS = [PROTO_TCP, PROTO_UDP, PROTO_ICMP, PROTO_ICMPV6];

interface Entry {
  first: number;
  last: number;
  /** indexed by protocol number: 1 = accepted */
  protocols: Uint8Array;
  sources: AllowedIps<true>;
}

interface Node {
  zero: Node | null;
  one: Node | null;
  entries: Entry[] | null;
}

const newNode = (): Node => ({ zero: null, one: null, entries: null });

/** True for the protocols whose packets carry ports (the rule's port range applies); others match any range. */
export function hasPorts(proto: number): boolean {
  return proto === PROTO_TCP || proto === PROTO_UDP || proto === PROTO_SCTP;
}

export class CompiledRules {
  private readonly v4 = newNode();
  private readonly v6 = newNode();
  /** the number of (rule, destination) entries */
  readonly size: number;

  /** Throws on a prefix that does not parse (the map parser has checked them: this is the engine's own guard). */
  constructor(rules: readonly FilterRule[]) {
    const sourceSets = new Map<string, AllowedIps<true>>();
    let size = 0;
    for (const r of rules) {
      const key = r.srcIps.join(',');
      let sources = sourceSets.get(key);
      if (!sources) {
        sources = new AllowedIps<true>();
        for (const s of r.srcIps) {
          const p = parsePrefix(s);
          sources.insert(p.address.text, p.bits, true);
        }
        sourceSets.set(key, sources);
      }
      const protocols = new Uint8Array(256);
      for (const n of r.protocols.length ? r.protocols : DEFAULT_PROTOCOLS) if (Number.isInteger(n) && n >= 0 && n < 256) protocols[n] = 1;
      for (const d of r.dstPorts) {
        const p = parsePrefix(d.ip);
        this.insert(ipToBytes(p.address.text), p.bits, { first: d.first, last: d.last, protocols, sources });
        size++;
      }
    }
    this.size = size;
  }

  private insert(addr: Buffer, bits: number, e: Entry): void {
    let n = addr.length === 4 ? this.v4 : this.v6;
    for (let i = 0; i < bits; i++) {
      const one = (addr[i >> 3]! >> (7 - (i & 7))) & 1;
      let next = one ? n.one : n.zero;
      if (!next) {
        next = newNode();
        if (one) n.one = next;
        else n.zero = next;
      }
      n = next;
    }
    (n.entries ??= []).push(e);
  }

  /**
   * True when a rule accepts a packet from the address at `srcOff` to the one at `dstOff` (both `alen` bytes in `b`)
   * with protocol `proto` and destination port `port` (ignored for protocols without ports).
   */
  accepts(b: Buffer, srcOff: number, dstOff: number, alen: number, proto: number, port: number): boolean {
    if (srcOff < 0 || dstOff < 0 || srcOff + alen > b.length || dstOff + alen > b.length) return false;
    const ports = hasPorts(proto);
    const bits = alen * 8;
    let n: Node | null = alen === 4 ? this.v4 : this.v6;
    for (let i = 0; n; i++) {
      const es = n.entries;
      if (es !== null) {
        for (let k = 0; k < es.length; k++) {
          const e = es[k]!;
          if (e.protocols[proto] !== 1) continue;
          if (ports && (port < e.first || port > e.last)) continue;
          if (e.sources.lookupAt(b, srcOff, alen) === true) return true;
        }
      }
      if (i === bits) break;
      n = (b[dstOff + (i >> 3)]! >> (7 - (i & 7))) & 1 ? n.one : n.zero;
    }
    return false;
  }
}
