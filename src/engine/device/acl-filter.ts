// The access policy enforced on the node, statefully, on the packet-filter seam
// (filter.ts). Outbound packets (read from the TUN: this node's own, or a LAN
// host's a router forwards into the mesh) pass and open or refresh a flow,
// except those of a flow a new rule set cut: its data stops both ways. An inbound packet (decrypted, the inner destination: this node, or a
// route, exit destination or device this node forwards to) passes when it
// belongs to a live flow, or when an accept rule covers its source, destination
// address and port and protocol; then it opens a flow itself, so that the
// replies this node sends are not taken for flows it opened. A new rule set
// (setRules) replaces the compiled rules in one assignment and re-checks every
// flow a rule let in: those the new rules refuse are cut at once.
//
// ICMP follows the rules (as a protocol without ports); an echo reply passes
// as part of the echo flow this node opened; an ICMP error passes when the
// packet it quotes belongs to a flow. Fragments: a first fragment is judged
// like any packet, and its datagram's identification is remembered for
// FRAGMENT_TIMEOUT_MS when it passes; a later fragment passes only if its first
// fragment passed (a later fragment that arrives before its first is dropped).
//
// A gateway of stock-WireGuard devices filters for them, since they run no
// filter: packets to a device are inbound packets like any; packets from a
// device (setLocalSources: cryptokey routing proved the device sent them) are
// its own connections, judged as outbound ones and so by the destination's rules.
//
// A packet allocates nothing: what parse() and parsePorts() learn is kept in
// fields, every number that crosses a call is a small integer (a number past
// 2^30, such as a 32-bit port word or a fractional time, would be boxed), and
// the clock is read on a tick while packets flow (CLOCK_TICK_MS), not per packet.
import { CompiledRules, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, hasPorts } from './acl-rules.js';
import { FRAGMENT_KIND, FlowOrigin, FlowTable, MAX_FLOWS } from './flow-table.js';
import type { PacketFilterHooks } from './filter.js';
import type { Clock } from '../clock.js';
import { CoarseClock } from '../coarse-clock.js';
import type { FilterRule } from '../../netmap/types.js';
import type { IpPrefix } from '../../util/netaddr.js';
import { AllowedIps } from './allowedips.js';

/** An established TCP flow (packets seen both ways) idles this long: as long as Linux's default keepalive interval, 2 h. */
export const TCP_ESTABLISHED_TIMEOUT_MS = 2 * 60 * 60 * 1000;
/** A TCP flow seen one way only (a SYN not yet answered), like conntrack's SYN_SENT: 2 min. */
export const TCP_OPENING_TIMEOUT_MS = 2 * 60 * 1000;
/** After a FIN or RST: the last segments and ACKs of the close, 60 s. */
export const TCP_CLOSING_TIMEOUT_MS = 60 * 1000;
/** UDP and other protocols: 3 min, a little over conntrack's 120 s stream timeout, so a once-a-minute keepalive holds. */
export const UDP_TIMEOUT_MS = 3 * 60 * 1000;
/** An ICMP echo exchange: 30 s. */
export const ICMP_TIMEOUT_MS = 30 * 1000;
/** A fragmented datagram's later fragments are awaited 30 s, Linux's IPv4 reassembly timeout. */
export const FRAGMENT_TIMEOUT_MS = 30 * 1000;
/**
 * Datagrams whose first fragment passed, held apart from the flows so that a stream of fragmented datagrams (each one a
 * record) never evicts a flow. Later fragments follow their first within microseconds on a tunnel: 4,096 records keep a
 * record 100 ms at 40,000 fragmented datagrams a second, about what one core's tunnel carries.
 */
export const MAX_FRAGMENT_RECORDS = 4096;
/** How old the time a packet is judged at may be while packets flow (coarse-clock.ts): 1/120 of the shortest timeout here. */
export { CLOCK_TICK_MS } from '../coarse-clock.js';
/** IPv6 extension headers walked before the packet is called malformed; real packets carry one or two. */
export const MAX_IPV6_EXTENSION_HEADERS = 8;

const TCP_FIN = 0x01;
const TCP_SYN = 0x02;
const TCP_RST = 0x04;
const TCP_ACK = 0x10;
/** flow flags */
const SEEN_BOTH_WAYS = 1;
const CLOSING = 2;

/** Drop counts by reason, read by status. */
export interface AclFilterStats {
  /** a new flow no rule accepts, or a packet either way of a flow a new rule set cut */
  droppedNoRule: number;
  /** a packet that only makes sense as a reply (TCP without SYN, echo reply, ICMP error) to no flow of this node */
  droppedNotAReply: number;
  /** a later fragment whose first fragment did not pass */
  droppedFragment: number;
  /** not IPv4/IPv6, or headers cut short or inconsistent */
  droppedMalformed: number;
  /** flows cut because a new rule set no longer accepts them */
  flowsRevoked: number;
  /** flows dropped to make room (the table holds `maxFlows`) */
  flowsEvicted: number;
  flows: number;
  maxFlows: number;
  /** (rule, destination) entries of the rules in force */
  rules: number;
}

export interface AclFilterOptions {
  clock: Clock;
  /** flow table capacity; MAX_FLOWS by default */
  maxFlows?: number;
  /** fragment records held; MAX_FRAGMENT_RECORDS by default */
  maxFragments?: number;
}

export class AclFilter {
  private rules: CompiledRules;
  /** sources on this node's side of the filter (devices it is the gateway of); null: none */
  private localSources: AllowedIps<true> | null = null;
  private readonly flows: FlowTable;
  private readonly fragments: FlowTable;
  private readonly clock: Clock;
  private readonly counts = { droppedNoRule: 0, droppedNotAReply: 0, droppedFragment: 0, droppedMalformed: 0, flowsRevoked: 0 };
  // the packet being looked at
  private alen: 4 | 16 = 4;
  private srcOff = 0;
  private dstOff = 0;
  private proto = 0;
  private l4 = 0;
  private fragment = false;
  private laterFragment = false;
  /** a fragment's IP identification, high and low 16 bits (IPv4's is 16 bits, IPv6's 32) */
  private fragmentIdHigh = 0;
  private fragmentIdLow = 0;
  private end = 0;
  /** this node's port and the peer's (ICMP echo: the identifier and 0; without ports: 0 and 0) */
  private localPort = 0;
  private remotePort = 0;
  /** the time packets are judged at, read per tick while packets flow rather than per packet */
  private readonly coarse: CoarseClock;

  constructor(rules: readonly FilterRule[], opts: AclFilterOptions) {
    this.rules = new CompiledRules(rules);
    this.clock = opts.clock;
    this.coarse = new CoarseClock(opts.clock);
    this.flows = new FlowTable(opts.maxFlows ?? MAX_FLOWS);
    this.fragments = new FlowTable(opts.maxFragments ?? MAX_FRAGMENT_RECORDS);
  }

  /** The hooks to install (Device.setPacketFilter): inbound rules and outbound flow tracking. */
  hooks(): Pick<PacketFilterHooks, 'filterIn' | 'filterOut'> {
    return { filterIn: (p) => this.inbound(p), filterOut: (p) => this.outbound(p) };
  }

  /**
   * Replaces the rules. Flows a rule let in and the new rules refuse are cut now (their later packets are dropped until
   * they expire); flows this node opened stay.
   */
  setRules(rules: readonly FilterRule[]): void {
    const next = new CompiledRules(rules);
    this.rules = next;
    const t = this.flows;
    const now = this.clock.now();
    t.now = now;
    this.fragments.now = now;
    const addrs = Buffer.alloc(32);
    t.forEach((s) => {
      if (t.expires[s]! <= now) return t.remove(s);
      if (t.origin[s] === FlowOrigin.Out || t.kind[s]! & FRAGMENT_KIND) return;
      const proto = t.kind[s]! & 0xff;
      // the flow's key is (local, remote, local port << 16 | remote port): the remote side opened it, to the local port;
      // a flow cut before and allowed again lives on
      t.addresses(s, addrs);
      const allowed = next.accepts(addrs, 16, 0, t.addressLength(s), proto, t.ports[s]! >>> 16);
      if (allowed === (t.origin[s] === FlowOrigin.In)) return;
      t.origin[s] = allowed ? FlowOrigin.In : FlowOrigin.Revoked;
      if (!allowed) this.counts.flowsRevoked++;
    });
  }

  /** Forgets every flow and fragment record (a new engine: the tunnels they belonged to are gone); the tables stay allocated. */
  clearFlows(): void {
    this.flows.clear();
    this.fragments.clear();
  }

  /** The addresses whose packets, though they arrive decrypted, open flows as this node's own do (a gateway's devices). */
  setLocalSources(prefixes: readonly IpPrefix[]): void {
    if (prefixes.length === 0) {
      this.localSources = null;
      return;
    }
    const t = new AllowedIps<true>();
    for (const p of prefixes) t.insert(p.address.text, p.bits, true);
    this.localSources = t;
  }

  stats(): AclFilterStats {
    return { ...this.counts, flowsEvicted: this.flows.evicted, flows: this.flows.size, maxFlows: this.flows.capacity, rules: this.rules.size };
  }

  /** Brings the tables' `now` up to date for a packet (coarse-clock.ts). */
  private stamp(): void {
    const c = this.coarse;
    c.stamp();
    this.flows.now = c.ms;
    this.fragments.now = c.ms;
  }

  /** Reads the IP header into the fields above; false if the packet is not one this filter can judge. */
  private parse(p: Buffer): boolean {
    const len = p.length;
    const v = len > 0 ? p[0]! >> 4 : 0;
    this.fragment = false;
    this.laterFragment = false;
    if (v === 4) {
      if (len < 20) return false;
      const ihl = (p[0]! & 0x0f) * 4;
      const total = (p[2]! << 8) | p[3]!;
      if (ihl < 20 || total < ihl || total > len) return false;
      this.end = total;
      this.alen = 4;
      this.srcOff = 12;
      this.dstOff = 16;
      this.proto = p[9]!;
      this.l4 = ihl;
      const fo = (p[6]! << 8) | p[7]!;
      if (fo & 0x3fff) {
        this.fragment = true;
        this.laterFragment = (fo & 0x1fff) !== 0;
        this.fragmentIdHigh = 0;
        this.fragmentIdLow = (p[4]! << 8) | p[5]!;
      }
      return true;
    }
    if (v !== 6 || len < 40) return false;
    const total = 40 + ((p[4]! << 8) | p[5]!);
    if (total > len) return false;
    this.end = total;
    this.alen = 16;
    this.srcOff = 8;
    this.dstOff = 24;
    let nh = p[6]!;
    let off = 40;
    for (let i = 0; ; i++) {
      if (nh === 0 || nh === 43 || nh === 60 || nh === 51) {
        // hop-by-hop, routing, destination options: (len + 1) * 8 bytes; AH: (len + 2) * 4
        if (i === MAX_IPV6_EXTENSION_HEADERS || off + 2 > total) return false;
        const size = nh === 51 ? (p[off + 1]! + 2) * 4 : (p[off + 1]! + 1) * 8;
        nh = p[off]!;
        off += size;
      } else if (nh === 44) {
        if (i === MAX_IPV6_EXTENSION_HEADERS || off + 8 > total) return false;
        const fo = (p[off + 2]! << 8) | p[off + 3]!;
        // an atomic fragment (offset 0, no more fragments) is a whole datagram
        if (fo & 0xfff9) {
          this.fragment = true;
          this.laterFragment = fo >>> 3 !== 0;
          this.fragmentIdHigh = (p[off + 4]! << 8) | p[off + 5]!;
          this.fragmentIdLow = (p[off + 6]! << 8) | p[off + 7]!;
        }
        nh = p[off]!;
        off += 8;
      } else break;
    }
    if (off > total) return false;
    this.proto = nh;
    this.l4 = off;
    return true;
  }

  /** Reads the flow key's ports of the packet parsed (`inbound`: the destination port is the local one); false if the L4 header is short. */
  private parsePorts(p: Buffer, inbound: boolean): boolean {
    const l4 = this.l4;
    const proto = this.proto;
    this.localPort = 0;
    this.remotePort = 0;
    if (hasPorts(proto)) {
      if (l4 + (proto === PROTO_TCP ? 14 : 4) > this.end) return false;
      const src = (p[l4]! << 8) | p[l4 + 1]!;
      const dst = (p[l4 + 2]! << 8) | p[l4 + 3]!;
      this.localPort = inbound ? dst : src;
      this.remotePort = inbound ? src : dst;
    } else if (proto === PROTO_ICMP || proto === PROTO_ICMPV6) {
      if (l4 + 8 > this.end) return false;
      // echo: the identifier; other ICMP has no flow of its own
      this.localPort = (p[l4 + 4]! << 8) | p[l4 + 5]!;
    }
    return true;
  }

  private timeout(s: number): number {
    const proto = this.flows.kind[s]! & 0xff;
    if (proto === PROTO_TCP) {
      const f = this.flows.flags[s]!;
      return f & CLOSING ? TCP_CLOSING_TIMEOUT_MS : f & SEEN_BOTH_WAYS ? TCP_ESTABLISHED_TIMEOUT_MS : TCP_OPENING_TIMEOUT_MS;
    }
    return proto === PROTO_ICMP || proto === PROTO_ICMPV6 ? ICMP_TIMEOUT_MS : UDP_TIMEOUT_MS;
  }

  /** Updates a flow's state with a packet of it (`opener`: sent by the side that opened it) and extends its life. */
  private refresh(p: Buffer, s: number, opener: boolean): void {
    const t = this.flows;
    if (!opener) t.flags[s]! |= SEEN_BOTH_WAYS;
    if (this.proto === PROTO_TCP) {
      const f = p[this.l4 + 13]!;
      if (f & (TCP_FIN | TCP_RST)) t.flags[s]! |= CLOSING;
      else if (f & TCP_SYN && !(f & TCP_ACK)) t.flags[s] = 0;
    }
    t.touch(s, this.timeout(s));
  }

  /** ICMP types that answer or report on an earlier packet (echo reply; errors). */
  private icmpKind(p: Buffer): 'request' | 'reply' | 'error' | 'other' {
    const type = p[this.l4]!;
    if (this.proto === PROTO_ICMP) {
      if (type === 8) return 'request';
      if (type === 0) return 'reply';
      return type === 3 || type === 4 || type === 11 || type === 12 ? 'error' : 'other';
    }
    if (type === 128) return 'request';
    if (type === 129) return 'reply';
    return type >= 1 && type <= 4 ? 'error' : 'other';
  }

  /** The inbound hook: true lets the packet through. */
  inbound(p: Buffer): boolean {
    if (!this.parse(p)) return this.drop('droppedMalformed');
    if (this.localSources !== null && this.localSources.lookupAt(p, this.srcOff, this.alen) === true) return this.outbound(p);
    this.stamp();
    const t = this.flows;
    if (this.laterFragment) {
      // the datagram's first fragment passed: remembered under (local, remote, protocol, identification)
      const kind = this.proto | FRAGMENT_KIND;
      if (this.fragments.find(p, this.dstOff, this.srcOff, this.alen, kind, this.fragmentIdHigh, this.fragmentIdLow) >= 0) return true;
      return this.drop('droppedFragment');
    }
    if (!this.parsePorts(p, true)) return this.drop('droppedMalformed');
    const icmp = this.proto === PROTO_ICMP || this.proto === PROTO_ICMPV6 ? this.icmpKind(p) : null;
    if (icmp === 'error') {
      if (this.quotesFlow(p) || this.rules.accepts(p, this.srcOff, this.dstOff, this.alen, this.proto, 0)) return this.passed(p);
      return this.drop('droppedNotAReply');
    }
    const flow = icmp === 'other' ? -1 : t.find(p, this.dstOff, this.srcOff, this.alen, this.proto, this.localPort, this.remotePort);
    if (flow >= 0) {
      if (t.origin[flow] === FlowOrigin.Revoked) return this.drop('droppedNoRule');
      this.refresh(p, flow, t.origin[flow] === FlowOrigin.In);
      return this.passed(p);
    }
    const tcpFlags = this.proto === PROTO_TCP ? p[this.l4 + 13]! : 0;
    if (this.rules.accepts(p, this.srcOff, this.dstOff, this.alen, this.proto, this.localPort)) {
      // a flow of its own, unless it is an ICMP message of no exchange, or a TCP RST (nothing follows it)
      if (icmp !== 'other' && !(tcpFlags & TCP_RST)) {
        // the key find() loaded: the lookup above missed (an ICMP message of no exchange skipped it, and opens none)
        this.refresh(p, t.insertLoaded(FlowOrigin.In, 0), true);
      }
      return this.passed(p);
    }
    const reply = icmp === 'reply' || (this.proto === PROTO_TCP && (!(tcpFlags & TCP_SYN) || (tcpFlags & TCP_ACK) !== 0));
    return this.drop(reply ? 'droppedNotAReply' : 'droppedNoRule');
  }

  /** The outbound hook: records the flow and lets the packet go, unless it belongs to a flow a new rule set cut. */
  outbound(p: Buffer): boolean {
    if (!this.parse(p) || this.laterFragment) return true;
    if (!this.parsePorts(p, false)) return true;
    if (this.proto === PROTO_ICMP || this.proto === PROTO_ICMPV6) {
      const k = this.icmpKind(p);
      if (k === 'error' || k === 'other') return true;
    }
    this.stamp();
    const t = this.flows;
    const s = t.find(p, this.srcOff, this.dstOff, this.alen, this.proto, this.localPort, this.remotePort);
    const tcpFlags = this.proto === PROTO_TCP ? p[this.l4 + 13]! : 0;
    if (s >= 0) {
      if (t.origin[s] === FlowOrigin.Revoked) {
        // a new connection of this node on the same ports takes the slot over
        if (tcpFlags & TCP_SYN && !(tcpFlags & TCP_ACK)) {
          t.origin[s] = FlowOrigin.Out;
          this.refresh(p, s, true);
          return true;
        }
        // this node's side of a cut flow carries no more data to the peer (a UDP stream would go on for ever, and the
        // peer takes it as a reply to its own flow); a RST carries none and ends the connection at the peer at once
        return tcpFlags & TCP_RST ? true : this.drop('droppedNoRule');
      }
      this.refresh(p, s, t.origin[s] === FlowOrigin.Out);
    } else if (!(tcpFlags & TCP_RST)) {
      this.refresh(p, t.insertLoaded(FlowOrigin.Out, 0), true);
    }
    return true;
  }

  /** An ICMP error quotes the start of a packet that was sent from here: true if that packet's flow is live. */
  private quotesFlow(p: Buffer): boolean {
    const q = this.l4 + 8;
    const end = this.end;
    const v = q < end ? p[q]! >> 4 : 0;
    let alen: 4 | 16;
    let srcOff: number;
    let proto: number;
    let l4: number;
    if (v === 4 && this.proto === PROTO_ICMP && q + 20 <= end) {
      alen = 4;
      srcOff = q + 12;
      proto = p[q + 9]!;
      l4 = q + (p[q]! & 0x0f) * 4;
    } else if (v === 6 && this.proto === PROTO_ICMPV6 && q + 40 <= end) {
      alen = 16;
      srcOff = q + 8;
      proto = p[q + 6]!;
      l4 = q + 40;
    } else return false;
    if (l4 + 8 > end) return false;
    const dstOff = srcOff + alen;
    // the quoted packet went out from here: its source port is the local one
    let local = 0;
    let remote = 0;
    if (hasPorts(proto)) {
      local = (p[l4]! << 8) | p[l4 + 1]!;
      remote = (p[l4 + 2]! << 8) | p[l4 + 3]!;
    } else if (proto === PROTO_ICMP || proto === PROTO_ICMPV6) local = (p[l4 + 4]! << 8) | p[l4 + 5]!;
    const s = this.flows.find(p, srcOff, dstOff, alen, proto, local, remote);
    return s >= 0 && this.flows.origin[s] !== FlowOrigin.Revoked;
  }

  /** A passing first fragment: its datagram's later fragments may follow. */
  private passed(p: Buffer): boolean {
    if (this.fragment) {
      const t = this.fragments;
      const s = t.find(p, this.dstOff, this.srcOff, this.alen, this.proto | FRAGMENT_KIND, this.fragmentIdHigh, this.fragmentIdLow);
      if (s >= 0) t.touch(s, FRAGMENT_TIMEOUT_MS);
      else t.insertLoaded(FlowOrigin.In, FRAGMENT_TIMEOUT_MS);
    }
    return true;
  }

  private drop(reason: 'droppedNoRule' | 'droppedNotAReply' | 'droppedFragment' | 'droppedMalformed'): false {
    this.counts[reason]++;
    return false;
  }
}
