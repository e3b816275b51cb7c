// rtnetlink spoken directly: the byte layout of the two requests meshctl sends
// (RTM_NEWADDR, RTM_NEWROUTE), the parser of the kernel's acks, and a small
// NETLINK_ROUTE socket that sends one request and waits, bounded, for its ack.
// Requests are built from typed prefixes (IpPrefix) and an interface index, so
// nothing is ever rendered as text for another program to parse.
// Netlink is in the host's byte order (linux/netlink.h), hence the helpers below.
import { endianness } from 'node:os';
import { ipBytes, type IpPrefix } from '../util/netaddr.js';
import { terminalSafe } from '../util/text.js';
import { AF_NETLINK, bindLibc, MSG_DONTWAIT, MSG_TRUNC, NETLINK_CAP_ACK, NETLINK_EXT_ACK, NETLINK_ROUTE, SOCK_RAW_CLOEXEC, SOL_NETLINK } from './libc.js';

export const NLMSG_HDRLEN = 16;
export const NLMSG_ERROR = 2;
export const RTM_NEWADDR = 20;
/** ifa_flags: add the address without duplicate address detection (linux/if_addr.h) */
export const IFA_F_NODAD = 0x02;
export const RTM_DELADDR = 21;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;
export const RTM_NEWRULE = 32;
export const RTM_DELRULE = 33;
export const NLMSG_DONE = 3;
export const NLM_F_DUMP = 0x300;
export const NLM_F_REQUEST = 0x01;
export const NLM_F_ACK = 0x04;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
/** in an ack: the request was cut to its header (NETLINK_CAP_ACK) */
const NLM_F_CAPPED = 0x100;
/** in an ack: extended-ack attributes follow the echoed request */
const NLM_F_ACK_TLVS = 0x200;
const NLMSGERR_ATTR_MSG = 1;
const NLA_TYPE_MASK = 0x3fff;
export const AF_INET = 2;
export const AF_INET6 = 10;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_TABLE = 15;
export const RT_TABLE_MAIN = 254;
/** what `ip route add` sets: a route configured by an administrator's tool, not a routing daemon */
const RTPROT_BOOT = 3;
const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_LINK = 253;
const RTN_UNICAST = 1;
const IFADDRMSG_LEN = 8;
const RTMSG_LEN = 12;
const SOCKADDR_NL_LEN = 12;
const EINTR = 4;
const EAGAIN = 11;

/** How long a request waits for the kernel's ack. rtnetlink answers inside the send (the request runs in the sender's
 * context), so the ack is normally queued before send returns; this only bounds a kernel that never answers. */
export const NETLINK_ACK_TIMEOUT_MS = 5_000;
/** One received datagram. An ack is 36 bytes plus the kernel's message (capped acks); an uncapped one echoes our
 * request (under 100 bytes). A longer datagram is refused as truncated rather than read in pieces. */
export const NETLINK_RECV_BUFFER_BYTES = 8_192;
/** Most entries one dump may return: the host's whole routing table is read to find meshctl's few routes, and a
 * full-table BGP host has about a million; meshctl refuses to walk past this rather than hold them all. */
export const NETLINK_DUMP_MAX_MESSAGES = 200_000;
/** The kernel's error message is cut to this many characters in our one-line errors. */
const EXT_ACK_MESSAGE_MAX_CHARS = 200;
/** Between checks for an ack that was not queued at once, so the event loop is never blocked while waiting. */
const ACK_POLL_INTERVAL_MS = 2;

const LE = endianness() === 'LE';
const w16 = (b: Buffer, v: number, off: number): number => (LE ? b.writeUInt16LE(v, off) : b.writeUInt16BE(v, off));
const w32 = (b: Buffer, v: number, off: number): number => (LE ? b.writeUInt32LE(v, off) : b.writeUInt32BE(v, off));
const r16 = (b: Buffer, off: number): number => (LE ? b.readUInt16LE(off) : b.readUInt16BE(off));
const r32 = (b: Buffer, off: number): number => (LE ? b.readUInt32LE(off) : b.readUInt32BE(off));
const ri32 = (b: Buffer, off: number): number => (LE ? b.readInt32LE(off) : b.readInt32BE(off));
/** `n` rounded up to a multiple of 4, exact for any length a 32-bit field can hold */
const align4 = (n: number): number => n + ((4 - (n & 3)) & 3);

/** A malformed datagram from the netlink socket: named, never a crash or an out-of-bounds read. */
export class NetlinkFormatError extends Error {
  override readonly name = 'NetlinkFormatError';
}

/** A failed socket call, with the errno and the C library's words for it. */
export class NetlinkSystemError extends Error {
  override readonly name = 'NetlinkSystemError';
  constructor(
    readonly errno: number,
    message: string,
  ) {
    super(message);
  }
}

function message(type: number, flags: number, seq: number, body: Buffer, attrs: Array<[number, Buffer]>): Buffer {
  const len = NLMSG_HDRLEN + body.length + attrs.reduce((n, [, v]) => n + align4(4 + v.length), 0);
  const out = Buffer.alloc(len);
  w32(out, len, 0);
  w16(out, type, 4);
  w16(out, flags, 6);
  w32(out, seq, 8);
  w32(out, 0, 12); // nlmsg_pid 0: the kernel fills in our port
  body.copy(out, NLMSG_HDRLEN);
  let off = NLMSG_HDRLEN + body.length;
  for (const [type, value] of attrs) {
    w16(out, 4 + value.length, off);
    w16(out, type, off + 2);
    value.copy(out, off + 4);
    off += align4(4 + value.length);
  }
  return out;
}

function family(prefix: IpPrefix): number {
  return prefix.address.family === 4 ? AF_INET : AF_INET6;
}

/** True when `prefix` has bits set after its length (10.90.0.1/16): not a network a route can name. */
export function hostBitsSet(prefix: IpPrefix): boolean {
  const bytes = ipBytes(prefix.address);
  for (let bit = prefix.bits; bit < bytes.length * 8; bit++) if (bytes[bit >> 3]! & (0x80 >> (bit & 7))) return true;
  return false;
}

function addressMessage(type: number, flags: number, seq: number, ifindex: number, prefix: IpPrefix): Buffer {
  const ifa = Buffer.alloc(IFADDRMSG_LEN);
  ifa[0] = family(prefix);
  ifa[1] = prefix.bits;
  // IPv6: no duplicate address detection. Control hands each address out once, and a tentative address
  // refuses bind() (EADDRNOTAVAIL) until DAD ends, which would delay the resolver on its fixed address.
  ifa[2] = family(prefix) === AF_INET6 ? IFA_F_NODAD : 0;
  ifa[3] = RT_SCOPE_UNIVERSE;
  w32(ifa, ifindex, 4);
  const addr = ipBytes(prefix.address);
  return message(type, flags, seq, ifa, [
    [IFA_LOCAL, addr],
    [IFA_ADDRESS, addr],
  ]);
}

/**
 * `ip addr replace <prefix> dev <ifindex>`: RTM_NEWADDR with NLM_F_CREATE|NLM_F_REPLACE (a repeat succeeds),
 * scope universe, IFA_LOCAL and IFA_ADDRESS both the address (no peer).
 */
export function newAddressMessage(seq: number, ifindex: number, prefix: IpPrefix): Buffer {
  return addressMessage(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, seq, ifindex, prefix);
}

/** `ip addr del <prefix> dev <ifindex>`: RTM_DELADDR naming the same address and length newAddressMessage adds. */
export function delAddressMessage(seq: number, ifindex: number, prefix: IpPrefix): Buffer {
  return addressMessage(RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK, seq, ifindex, prefix);
}

/**
 * `ip route add <prefix> dev <ifindex>`: RTM_NEWROUTE with NLM_F_CREATE|NLM_F_EXCL (EEXIST when the prefix is
 * already routed), table main, protocol boot, unicast, scope link for IPv4 and universe for IPv6 (as iproute2 sends),
 * RTA_DST the network and RTA_OIF the interface. The caller refuses prefixes with host bits set.
 */
export function newRouteMessage(seq: number, ifindex: number, prefix: IpPrefix): Buffer {
  return routeMessage(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, ifindex, prefix, RT_TABLE_MAIN);
}

const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  w32(b, v, 0);
  return b;
};

/** A routing table number: 1..2^32-1 except 0 (unspec); main is 254. */
function checkTable(table: number): void {
  if (!Number.isInteger(table) || table < 1 || table > 0xffff_ffff) throw new RangeError(`routing table ${table} is not 1..4294967295`);
}

function routeMessage(type: number, flags: number, seq: number, ifindex: number, prefix: IpPrefix, table: number): Buffer {
  checkTable(table);
  const rtm = Buffer.alloc(RTMSG_LEN);
  rtm[0] = family(prefix);
  rtm[1] = prefix.bits; // rtm_dst_len
  rtm[2] = 0; // rtm_src_len
  rtm[3] = 0; // rtm_tos
  rtm[4] = table < 256 ? table : 252; // RT_TABLE_COMPAT when the number needs RTA_TABLE
  rtm[5] = RTPROT_BOOT;
  rtm[6] = prefix.address.family === 4 ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
  rtm[7] = RTN_UNICAST;
  w32(rtm, 0, 8); // rtm_flags
  const attrs: Array<[number, Buffer]> = [
    [RTA_DST, ipBytes(prefix.address)],
    [RTA_OIF, u32(ifindex)],
  ];
  if (table !== RT_TABLE_MAIN) attrs.push([RTA_TABLE, u32(table)]);
  return message(type, flags, seq, rtm, attrs);
}

/**
 * `ip route replace <prefix> dev <ifindex> table <table>`: RTM_NEWROUTE with NLM_F_CREATE|NLM_F_REPLACE (a repeat
 * succeeds, and a route another interface held in that table moves here), RTA_TABLE carrying the table. The caller
 * refuses prefixes with host bits set.
 */
export function replaceTableRouteMessage(seq: number, ifindex: number, prefix: IpPrefix, table: number): Buffer {
  return routeMessage(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, seq, ifindex, prefix, table);
}

/** `ip route del <prefix> dev <ifindex> table <table>`: RTM_DELROUTE naming what replaceTableRouteMessage adds (ESRCH when absent). */
export function delTableRouteMessage(seq: number, ifindex: number, prefix: IpPrefix, table: number): Buffer {
  return routeMessage(RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK, seq, ifindex, prefix, table);
}

/**
 * `ip route del` of a route a dump returned, of any type: family, length, table and RTA_DST only, with protocol,
 * type and scope left unspecified (RT_SCOPE_NOWHERE), so the kernel matches whatever route that is.
 */
export function delDumpedRouteMessage(seq: number, route: DumpedRoute): Buffer {
  checkTable(route.table);
  const rtm = Buffer.alloc(RTMSG_LEN);
  rtm[0] = route.family === 4 ? AF_INET : AF_INET6;
  rtm[1] = route.bits;
  rtm[4] = route.table < 256 ? route.table : 252;
  rtm[6] = 255; // RT_SCOPE_NOWHERE: any scope
  const attrs: Array<[number, Buffer]> = [[RTA_TABLE, u32(route.table)]];
  if (route.bits > 0) attrs.unshift([RTA_DST, route.dst]);
  return message(RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK, seq, rtm, attrs);
}

/** `ip -4|-6 route show table all`: RTM_GETROUTE dump of one family; the caller filters by table (routesInDump). */
export function dumpRoutesMessage(seq: number, fam: 4 | 6): Buffer {
  const rtm = Buffer.alloc(RTMSG_LEN);
  rtm[0] = fam === 4 ? AF_INET : AF_INET6;
  return message(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, seq, rtm, []);
}

/** One route of a dump: enough to name it again in a delete. */
export interface DumpedRoute {
  family: 4 | 6;
  /** the destination network's bytes (4 or 16) and its length; a default route has all-zero bytes */
  dst: Buffer;
  bits: number;
  table: number;
  /** output interface index, 0 when the route names none */
  oif: number;
  /** RTN_* type (1 unicast, 2 local, 7 unreachable, 9 throw ...) */
  type: number;
}

/** A raw netlink message of a datagram: its type, flags, sequence number and body (after the 16-byte header). */
export interface RawMessage {
  type: number;
  flags: number;
  seq: number;
  body: Buffer;
}

/** Every message of one datagram, lengths checked: NetlinkFormatError when one does not fit. */
export function parseMessages(buf: Buffer): RawMessage[] {
  const out: RawMessage[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < NLMSG_HDRLEN) throw new NetlinkFormatError(`netlink reply: ${buf.length - off} stray bytes after message at byte ${off}`);
    const len = r32(buf, off);
    if (len < NLMSG_HDRLEN || len > buf.length - off) {
      throw new NetlinkFormatError(`netlink reply: message length ${len} at byte ${off} does not fit ${buf.length} bytes`);
    }
    out.push({ type: r16(buf, off + 4), flags: r16(buf, off + 6), seq: r32(buf, off + 8), body: buf.subarray(off + NLMSG_HDRLEN, off + len) });
    off += Math.min(align4(len), buf.length - off);
  }
  return out;
}

/** The attributes of a body after its fixed part of `fixed` bytes, as type → value (the last of a type wins). */
export function parseAttrs(body: Buffer, fixed: number): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  if (body.length < fixed) throw new NetlinkFormatError(`netlink message of ${body.length} bytes is shorter than its ${fixed}-byte header`);
  let off = fixed;
  while (off + 4 <= body.length) {
    const len = r16(body, off);
    if (len < 4 || len > body.length - off) throw new NetlinkFormatError(`netlink attribute length ${len} at byte ${off} does not fit`);
    out.set(r16(body, off + 2) & NLA_TYPE_MASK, body.subarray(off + 4, off + len));
    off += align4(len);
  }
  return out;
}

/** An RTM_NEWROUTE body of a dump as a DumpedRoute; null for families other than IPv4/IPv6. Throws NetlinkFormatError when malformed. */
export function parseRoute(body: Buffer): DumpedRoute | null {
  const attrs = parseAttrs(body, RTMSG_LEN);
  const fam = body[0] === AF_INET ? 4 : body[0] === AF_INET6 ? 6 : null;
  if (fam === null) return null;
  const size = fam === 4 ? 4 : 16;
  const bits = body[1]!;
  if (bits > size * 8) throw new NetlinkFormatError(`route of family ${fam} with prefix length ${bits}`);
  const dstAttr = attrs.get(RTA_DST);
  if (dstAttr !== undefined && dstAttr.length !== size) throw new NetlinkFormatError(`route destination of ${dstAttr.length} bytes for family ${fam}`);
  const tableAttr = attrs.get(RTA_TABLE);
  const oifAttr = attrs.get(RTA_OIF);
  return {
    family: fam,
    dst: dstAttr ? Buffer.from(dstAttr) : Buffer.alloc(size),
    bits,
    table: tableAttr && tableAttr.length === 4 ? r32(tableAttr, 0) : body[4]!,
    oif: oifAttr && oifAttr.length === 4 ? r32(oifAttr, 0) : 0,
    type: body[7]!,
  };
}

/** What a policy-routing rule does with a packet it matches. */
export type RuleAction = { kind: 'lookup'; table: number } | { kind: 'unreachable' };

/** One policy-routing rule, as `ip rule add pref P [fwmark M/K] (lookup T | unreachable)` takes it. */
export interface RuleSpec {
  family: 4 | 6;
  /** FRA_PRIORITY: lower runs first; 0 is the kernel's `local` rule and is refused */
  priority: number;
  /** FRA_FWMARK/FRA_FWMASK: match only packets whose mark & mask equals mark; absent = every packet */
  fwmark?: { mark: number; mask: number };
  action: RuleAction;
}

const FR_ACT_TO_TBL = 1;
const FR_ACT_UNREACHABLE = 7;
const FRA_PRIORITY = 6;
const FRA_FWMARK = 10;
const FRA_TABLE = 15;
const FRA_FWMASK = 16;
const FIB_RULE_HDR_LEN = 12;

const isU32 = (v: number): boolean => Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff;

function ruleMessage(type: number, flags: number, seq: number, rule: RuleSpec): Buffer {
  if (!isU32(rule.priority) || rule.priority === 0) throw new RangeError(`rule priority ${rule.priority} is not 1..4294967295`);
  if (rule.fwmark && (!isU32(rule.fwmark.mark) || !isU32(rule.fwmark.mask) || (rule.fwmark.mark & ~rule.fwmark.mask) !== 0)) {
    throw new RangeError(`rule fwmark ${rule.fwmark.mark}/${rule.fwmark.mask} is not a 32-bit mark within its mask`);
  }
  const hdr = Buffer.alloc(FIB_RULE_HDR_LEN);
  hdr[0] = rule.family === 4 ? AF_INET : AF_INET6;
  // dst_len, src_len, tos 0; table in the header when it fits a byte, as iproute2 sends; res1, res2 0
  const attrs: Array<[number, Buffer]> = [[FRA_PRIORITY, u32(rule.priority)]];
  if (rule.action.kind === 'lookup') {
    checkTable(rule.action.table);
    hdr[4] = rule.action.table < 256 ? rule.action.table : 252;
    hdr[7] = FR_ACT_TO_TBL;
    attrs.push([FRA_TABLE, u32(rule.action.table)]);
  } else {
    hdr[7] = FR_ACT_UNREACHABLE;
  }
  if (rule.fwmark) attrs.push([FRA_FWMARK, u32(rule.fwmark.mark)], [FRA_FWMASK, u32(rule.fwmark.mask)]);
  return message(type, flags, seq, hdr, attrs);
}

/** `ip rule add ...`: RTM_NEWRULE with NLM_F_CREATE|NLM_F_EXCL, so a rule already there answers EEXIST (the caller treats it as done). */
export function newRuleMessage(seq: number, rule: RuleSpec): Buffer {
  return ruleMessage(RTM_NEWRULE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, rule);
}

/** `ip rule del ...`: RTM_DELRULE naming the same rule (ENOENT when absent). */
export function delRuleMessage(seq: number, rule: RuleSpec): Buffer {
  return ruleMessage(RTM_DELRULE, NLM_F_REQUEST | NLM_F_ACK, seq, rule);
}

export interface Ack {
  /** the sequence number of the request this answers */
  seq: number;
  /** 0 on success, else the positive errno */
  errno: number;
  /** the kernel's extended-ack message, made one-line and terminal-safe; null when it sent none */
  message: string | null;
}

function extAckMessage(buf: Buffer, start: number, end: number): string | null {
  let off = start;
  while (off < end) {
    if (end - off < 4) throw new NetlinkFormatError(`netlink ack: truncated attribute header at byte ${off}`);
    const len = r16(buf, off);
    const type = r16(buf, off + 2) & NLA_TYPE_MASK;
    if (len < 4 || len > end - off) throw new NetlinkFormatError(`netlink ack: attribute length ${len} at byte ${off} does not fit`);
    if (type === NLMSGERR_ATTR_MSG) {
      const raw = buf.subarray(off + 4, off + len);
      const nul = raw.indexOf(0);
      return terminalSafe((nul < 0 ? raw : raw.subarray(0, nul)).toString('utf8'), EXT_ACK_MESSAGE_MAX_CHARS);
    }
    off += align4(len);
  }
  return null;
}

/**
 * Every NLMSG_ERROR (ack) in one datagram; other message types are skipped. Throws NetlinkFormatError when a length
 * does not fit the buffer or an ack is shorter than its fixed part.
 */
export function parseAcks(buf: Buffer): Ack[] {
  const acks: Ack[] = [];
  if (buf.length < NLMSG_HDRLEN) throw new NetlinkFormatError(`netlink reply of ${buf.length} bytes is shorter than a message header`);
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < NLMSG_HDRLEN) throw new NetlinkFormatError(`netlink reply: ${buf.length - off} stray bytes after message at byte ${off}`);
    const len = r32(buf, off);
    const type = r16(buf, off + 4);
    const flags = r16(buf, off + 6);
    const seq = r32(buf, off + 8);
    if (len < NLMSG_HDRLEN || len > buf.length - off) {
      throw new NetlinkFormatError(`netlink reply: message length ${len} at byte ${off} does not fit ${buf.length} bytes`);
    }
    if (type === NLMSG_ERROR) {
      const end = off + len;
      const fixed = NLMSG_HDRLEN + 4 + NLMSG_HDRLEN; // header, int error, the request's header
      if (len < fixed) throw new NetlinkFormatError(`netlink ack of ${len} bytes is shorter than ${fixed}`);
      const error = ri32(buf, off + NLMSG_HDRLEN);
      if (error > 0) throw new NetlinkFormatError(`netlink ack carries a positive error ${error}`);
      let msg: string | null = null;
      if (flags & NLM_F_ACK_TLVS) {
        const echoed = r32(buf, off + NLMSG_HDRLEN + 4);
        const attrs = off + NLMSG_HDRLEN + 4 + (flags & NLM_F_CAPPED || error === 0 ? NLMSG_HDRLEN : align4(echoed));
        if (echoed < NLMSG_HDRLEN || attrs > end) throw new NetlinkFormatError(`netlink ack: echoed request of ${echoed} bytes does not fit the ack`);
        msg = extAckMessage(buf, attrs, end);
      }
      acks.push({ seq, errno: error === 0 ? 0 : -error, message: msg });
    }
    off += Math.min(align4(len), buf.length - off);
  }
  return acks;
}

export interface RouteSocketOptions {
  /** how long a request waits for its ack (NETLINK_ACK_TIMEOUT_MS) */
  ackTimeoutMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A NETLINK_ROUTE socket that sends one request at a time and reads its ack. Synchronous calls, non-blocking reads. */
export class RouteSocket {
  private seq = 0;
  private closed = false;
  private readonly rx = Buffer.alloc(NETLINK_RECV_BUFFER_BYTES);
  private readonly ackTimeoutMs: number;

  private constructor(
    private readonly fd: number,
    opts: RouteSocketOptions,
  ) {
    this.ackTimeoutMs = opts.ackTimeoutMs ?? NETLINK_ACK_TIMEOUT_MS;
  }

  static open(opts: RouteSocketOptions = {}): RouteSocket {
    const libc = bindLibc();
    const fd = libc.socket(AF_NETLINK, SOCK_RAW_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) throw systemError('opening a netlink socket');
    // both are optional (older kernels lack them): small acks, and the kernel's reason in error acks
    libc.setsockoptInt(fd, SOL_NETLINK, NETLINK_CAP_ACK, 1);
    libc.setsockoptInt(fd, SOL_NETLINK, NETLINK_EXT_ACK, 1);
    if (libc.bind(fd, sockaddrNl(), SOCKADDR_NL_LEN) !== 0) {
      const err = systemError('binding the netlink socket');
      libc.close(fd);
      throw err;
    }
    return new RouteSocket(fd, opts);
  }

  /** The sequence number for the next request. */
  nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0 || 1;
    return this.seq;
  }

  /** Sends `msg` (built with sequence number `seq`, NLM_F_ACK set) to the kernel and returns its ack. */
  async request(msg: Buffer, seq: number): Promise<Ack> {
    this.check();
    this.send(msg);
    return this.receiveAck(seq);
  }

  /** Waits at most the ack timeout for the kernel's ack to `seq`; acks to other requests and datagrams from anyone but the kernel are dropped. */
  async receiveAck(seq: number): Promise<Ack> {
    this.check();
    const deadline = performance.now() + this.ackTimeoutMs;
    for (;;) {
      const n = await this.receive(deadline, `no answer from the kernel within ${this.ackTimeoutMs} ms`);
      const ack = parseAcks(this.rx.subarray(0, n)).find((a) => a.seq === seq);
      if (ack) return ack;
    }
  }

  /**
   * Sends a dump request (built with `seq`, NLM_F_DUMP set) and returns every message of the answer up to NLMSG_DONE.
   * At most `maxMessages` are kept (more throws: a table that large is not ours to walk); an NLMSG_ERROR or an
   * error in NLMSG_DONE throws NetlinkSystemError with the kernel's errno.
   */
  async dump(msg: Buffer, seq: number, maxMessages = NETLINK_DUMP_MAX_MESSAGES): Promise<RawMessage[]> {
    this.check();
    this.send(msg);
    const out: RawMessage[] = [];
    const deadline = performance.now() + this.ackTimeoutMs;
    const strerror = (err: number): string => bindLibc().strerror(err);
    for (;;) {
      const n = await this.receive(deadline, `no end of the kernel's dump within ${this.ackTimeoutMs} ms`);
      for (const m of parseMessages(this.rx.subarray(0, n))) {
        if (m.seq !== seq) continue;
        const err = m.body.length >= 4 ? ri32(m.body, 0) : 0;
        if (m.type === NLMSG_DONE) {
          if (err < 0) throw new NetlinkSystemError(-err, `the kernel's dump failed: ${strerror(-err)}`);
          return out;
        }
        if (m.type === NLMSG_ERROR) throw new NetlinkSystemError(-err, `the kernel refused the dump: ${strerror(-err)}`);
        if (out.length >= maxMessages) throw new NetlinkFormatError(`the kernel's dump has more than ${maxMessages} entries`);
        out.push({ ...m, body: Buffer.from(m.body) });
      }
    }
  }

  private send(msg: Buffer): void {
    const sent = bindLibc().sendto(this.fd, msg, msg.length, 0, sockaddrNl(), SOCKADDR_NL_LEN);
    if (sent < 0) throw systemError('sending to the kernel');
    if (sent !== msg.length) throw new NetlinkSystemError(0, `sending to the kernel: ${sent} of ${msg.length} bytes sent`);
  }

  /**
   * The next datagram from the kernel into `rx`, its length returned; datagrams from anyone else are dropped. Reads
   * without blocking and sleeps between tries, so the event loop is never held; past `deadline` throws ETIMEDOUT.
   * The kernel sizes each datagram (dump parts too) to the largest read asked for, so a longer one is refused.
   */
  private async receive(deadline: number, timeoutMessage: string): Promise<number> {
    const libc = bindLibc();
    const from = Buffer.alloc(SOCKADDR_NL_LEN);
    const fromLen = Buffer.alloc(4);
    for (;;) {
      w32(fromLen, SOCKADDR_NL_LEN, 0);
      const n = libc.recvfrom(this.fd, this.rx, this.rx.length, MSG_DONTWAIT | MSG_TRUNC, from, fromLen);
      if (n < 0) {
        const errno = libc.errno();
        if (errno !== EAGAIN && errno !== EINTR) throw systemError('reading from the kernel', errno);
        if (errno === EAGAIN) {
          if (performance.now() >= deadline) throw new NetlinkSystemError(110 /* ETIMEDOUT */, timeoutMessage);
          await sleep(ACK_POLL_INTERVAL_MS);
        }
        continue;
      }
      if (n > this.rx.length) throw new NetlinkFormatError(`netlink reply of ${n} bytes is longer than the ${this.rx.length}-byte buffer`);
      if (r16(from, 0) === AF_NETLINK && r32(from, 4) === 0) return n;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    bindLibc().close(this.fd);
  }

  private check(): void {
    if (this.closed) throw new NetlinkSystemError(9 /* EBADF */, 'the netlink socket is closed');
  }
}

/** struct sockaddr_nl for the kernel (and for our own bind: port chosen by the kernel, no groups). */
function sockaddrNl(): Buffer {
  const sa = Buffer.alloc(SOCKADDR_NL_LEN);
  w16(sa, AF_NETLINK, 0);
  return sa;
}

function systemError(what: string, errno = bindLibc().errno()): NetlinkSystemError {
  return new NetlinkSystemError(errno, `${what}: ${bindLibc().strerror(errno)}`);
}
