// rtnetlink spoken directly: the byte layout of the two requests meshctl sends
// (RTM_NEWADDR, RTM_NEWROUTE), the parser of the kernel's acks, and a small
// NETLINK_ROUTE socket that sends one request and waits, bounded, for its ack.
// Requests are built from typed prefixes (IpPrefix) and an interface index, so
// nothing is ever rendered as text for another program to parse.
// Netlink is in the host's byte order (linux/netlink.h), hence the helpers below.
import { endianness } from 'node:os';
import { ipBytes, type IpPrefix } from '../util/netaddr.js';
import { terminalSafe } from '../util/text.js';
import {
  AF_NETLINK,
  bindLibc,
  MSG_DONTWAIT,
  MSG_TRUNC,
  NETLINK_CAP_ACK,
  NETLINK_EXT_ACK,
  NETLINK_ROUTE,
  POLLIN,
  SOCK_RAW_CLOEXEC,
  SOL_NETLINK,
} from './libc.js';

export const NLMSG_HDRLEN = 16;
export const NLMSG_ERROR = 2;
export const RTM_NEWADDR = 20;
/** ifa_flags: add the address without duplicate address detection (linux/if_addr.h) */
export const IFA_F_NODAD = 0x02;
export const RTM_DELADDR = 21;
export const RTM_NEWROUTE = 24;
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
const RT_TABLE_MAIN = 254;
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
  const rtm = Buffer.alloc(RTMSG_LEN);
  rtm[0] = family(prefix);
  rtm[1] = prefix.bits; // rtm_dst_len
  rtm[2] = 0; // rtm_src_len
  rtm[3] = 0; // rtm_tos
  rtm[4] = RT_TABLE_MAIN;
  rtm[5] = RTPROT_BOOT;
  rtm[6] = prefix.address.family === 4 ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
  rtm[7] = RTN_UNICAST;
  w32(rtm, 0, 8); // rtm_flags
  const oif = Buffer.alloc(4);
  w32(oif, ifindex, 0);
  return message(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, rtm, [
    [RTA_DST, ipBytes(prefix.address)],
    [RTA_OIF, oif],
  ]);
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
    const sent = bindLibc().sendto(this.fd, msg, msg.length, 0, sockaddrNl(), SOCKADDR_NL_LEN);
    if (sent < 0) throw systemError('sending to the kernel');
    if (sent !== msg.length) throw new NetlinkSystemError(0, `sending to the kernel: ${sent} of ${msg.length} bytes sent`);
    return this.receiveAck(seq);
  }

  /** Waits at most the ack timeout for the kernel's ack to `seq`; acks to other requests and datagrams from anyone but the kernel are dropped. */
  async receiveAck(seq: number): Promise<Ack> {
    this.check();
    const libc = bindLibc();
    const deadline = Date.now() + this.ackTimeoutMs;
    const pfd = Buffer.alloc(8);
    const from = Buffer.alloc(SOCKADDR_NL_LEN);
    const fromLen = Buffer.alloc(4);
    for (let first = true; ; first = false) {
      if (!first && Date.now() >= deadline) throw new NetlinkSystemError(110 /* ETIMEDOUT */, `no answer from the kernel within ${this.ackTimeoutMs} ms`);
      w32(pfd, this.fd, 0);
      w16(pfd, POLLIN, 4);
      w16(pfd, 0, 6);
      const ready = libc.poll(pfd, 1, 0);
      if (ready < 0 && libc.errno() !== EINTR) throw systemError('waiting for the kernel');
      if (ready <= 0) {
        await sleep(ACK_POLL_INTERVAL_MS);
        continue;
      }
      w32(fromLen, SOCKADDR_NL_LEN, 0);
      const n = libc.recvfrom(this.fd, this.rx, this.rx.length, MSG_DONTWAIT | MSG_TRUNC, from, fromLen);
      if (n < 0) {
        const errno = libc.errno();
        if (errno !== EAGAIN && errno !== EINTR) throw systemError('reading from the kernel', errno);
        continue;
      }
      if (n > this.rx.length) throw new NetlinkFormatError(`netlink reply of ${n} bytes is longer than the ${this.rx.length}-byte buffer`);
      const fromKernel = r16(from, 0) === AF_NETLINK && r32(from, 4) === 0;
      if (!fromKernel) continue;
      const ack = parseAcks(this.rx.subarray(0, n)).find((a) => a.seq === seq);
      if (ack) return ack;
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
