// sendmmsg(2) through koffi: one system call for a batch of datagrams. The TUN
// reader hands over up to 64 packets at a time; sending their encrypted forms
// with one dgram.send each costs a libuv request and a syscall per packet
// (docs/performance.md). Native memory for the packets, addresses, iovecs and
// mmsghdrs is allocated once; each batch copies packets in and fills lengths.
//
// UDP GSO: consecutive datagrams of a batch to the same destination and of the
// same size (the last may be shorter) leave as ONE message whose iovecs are
// their slots, with a UDP_SEGMENT cmsg carrying the size: the kernel runs its
// UDP/IP send path once per run instead of once per datagram and splits the
// run as late as it can (over veth the peer's socket gets it whole). A TSO
// super-packet split into ~45 segments by the TUN reader leaves as one message.
// The slots stay where they are (no copy): a run's iovecs are adjacent in the
// iovec array, so its message points at the first and says how many.
import { koffi } from '../../util/koffi.js';
import { isIPv4 } from 'node:net';
import { putU32le } from '../../util/bytes.js';
import type { Endpoint } from './endpoint.js';
import { writeIpv6 } from '../../util/ip.js';

export const MMSG_MAX_BATCH = 64;
/** Largest datagram the batch path takes; bigger ones go through dgram. */
export const MMSG_SLOT = 2048;
const NAME_SLOT = 28; // sizeof(struct sockaddr_in6)
const IOV_SIZE = 16;
const MMSGHDR_SIZE = 64; // struct mmsghdr on x86_64/aarch64: msghdr (56) + msg_len + padding
const AF_INET = 2;
const AF_INET6 = 10;
const MSG_DONTWAIT = 0x40;
const SOL_UDP = 17;
const UDP_SEGMENT = 103; // linux/udp.h
/** CMSG_SPACE(sizeof(u16)) on 64-bit: a 16-byte cmsghdr and the u16, padded to 8 */
const CMSG_SPACE_U16 = 24;
/** CMSG_LEN(sizeof(u16)) */
const CMSG_LEN_U16 = 18;
/**
 * Most datagrams in one GSO message: the kernel's UDP_MAX_SEGMENTS, 64 until
 * Linux 6.9 raised it to 128; a larger run is refused with EINVAL, so 64.
 */
export const GSO_MAX_SEGMENTS = 64;
/**
 * Most bytes of UDP payload in one GSO message: the run is built as one IP
 * datagram before segmentation, so 65,535 less the UDP header (8) and the IP
 * header (20 for IPv4; 40 for IPv6, whose limit excludes it, so this is safe).
 */
const GSO_MAX_BYTES = { 4: 65_535 - 20 - 8, 6: 65_535 - 40 - 8 } as const;
// errno values meaning "not with UDP_SEGMENT" (asm-generic/errno*.h): no UDP GSO in
// the kernel or on this socket (EINVAL, ENOPROTOOPT, EOPNOTSUPP), a device without
// checksum offload or IPsec on the route (EIO), a segment over the route's MTU (EMSGSIZE)
const EIO = 5;
const EINVAL = 22;
const EMSGSIZE = 90;
const ENOPROTOOPT = 92;
const EOPNOTSUPP = 95;
const gsoRefusal = (e: number): boolean => e === EIO || e === EINVAL || e === EMSGSIZE || e === ENOPROTOOPT || e === EOPNOTSUPP;

interface CachedSockaddr {
  address: string;
  port: number;
  family: 4 | 6;
  bytes: Buffer;
  /** the kernel refused a GSO message to this destination after accepting others (its route's MTU): plain sends only */
  noGso: boolean;
}
/**
 * Each endpoint's sockaddr, built once: path selection reuses its Endpoint
 * objects, so the per-packet cost is a lookup and a 28-byte copy instead of
 * parsing the address text (which cost ~20 µs per batch when cold).
 */
const sockaddrs = new WeakMap<Endpoint, CachedSockaddr>();

function sockaddrOf(ep: Endpoint, family: 4 | 6): Buffer | null {
  const c = sockaddrs.get(ep);
  if (c && c.address === ep.address && c.port === ep.port && c.family === family) return c.bytes;
  const b = Buffer.alloc(NAME_SLOT);
  if (family === 4) {
    if (!isIPv4(ep.address)) return null;
    b.writeUInt16LE(AF_INET, 0);
    b.writeUInt16BE(ep.port, 2);
    const o = ep.address.split('.');
    for (let k = 0; k < 4; k++) b[4 + k] = Number(o[k]);
  } else {
    b.writeUInt16LE(AF_INET6, 0);
    b.writeUInt16BE(ep.port, 2);
    writeIpv6(ep.address, b, 8);
  }
  sockaddrs.set(ep, { address: ep.address, port: ep.port, family, bytes: b, noGso: false });
  return b;
}

type SendMmsg = (fd: number, vec: unknown, vlen: number, flags: number) => number;
type GetSockOpt = (fd: number, level: number, name: number, val: Buffer, len: Buffer) => number;
let sendmmsgFn: SendMmsg | null | undefined;
let getsockoptFn: GetSockOpt | null = null;

function bindSendmmsg(): SendMmsg | null {
  if (sendmmsgFn === undefined) {
    try {
      sendmmsgFn =
        process.arch === 'x64' || process.arch === 'arm64' ? (koffi.load('libc.so.6').func('int sendmmsg(int, void *, unsigned int, int)') as SendMmsg) : null;
    } catch {
      sendmmsgFn = null;
    }
  }
  return sendmmsgFn;
}

/** Whether the socket knows UDP_SEGMENT at all (Linux ≥ 4.18): an older kernel would ignore the cmsg and send one huge datagram. */
function socketKnowsGso(fd: number): boolean {
  try {
    getsockoptFn ??= koffi.load('libc.so.6').func('int getsockopt(int, int, int, void *, void *)') as GetSockOpt;
    const len = Buffer.alloc(4);
    len.writeUInt32LE(4);
    return getsockoptFn(fd, SOL_UDP, UDP_SEGMENT, Buffer.alloc(4), len) === 0;
  } catch {
    return false;
  }
}

const NO_BUF = Buffer.alloc(0);
const NO_EP: Endpoint = { address: '', port: 0 };

export interface MmsgBatchOptions {
  /** send runs of same-size datagrams to one destination as one UDP_SEGMENT message (default true) */
  gso?: boolean;
}

/** One batch buffer per socket family. */
export class MmsgBatch {
  private readonly mem: unknown;
  private readonly view: Buffer;
  private readonly base: bigint;
  private readonly pktOff = 0;
  private readonly nameOff = MMSG_MAX_BATCH * MMSG_SLOT;
  private readonly iovOff = this.nameOff + MMSG_MAX_BATCH * NAME_SLOT;
  private readonly hdrOff = this.iovOff + MMSG_MAX_BATCH * IOV_SIZE;
  /** the GSO plan's mmsghdrs, one per run, and each one's UDP_SEGMENT cmsg */
  private readonly gsoHdrOff = this.hdrOff + MMSG_MAX_BATCH * MMSGHDR_SIZE;
  private readonly cmsgOff = this.gsoHdrOff + MMSG_MAX_BATCH * MMSGHDR_SIZE;
  private readonly fn: SendMmsg;
  count = 0;
  /**
   * The queued datagrams and their endpoints, slot by slot; after a flush,
   * slots [taken, queued) hold what the kernel did not take, for the dgram
   * fallback, until `clear`. Fixed arrays written by index: emptying an array
   * with `length = 0` frees its backing store, so the next push allocates anew.
   */
  readonly bufs: Buffer[] = Array<Buffer>(MMSG_MAX_BATCH).fill(NO_BUF);
  readonly eps: Endpoint[] = Array<Endpoint>(MMSG_MAX_BATCH).fill(NO_EP);
  /** each slot's datagram length */
  private readonly lens = new Int32Array(MMSG_MAX_BATCH);
  /** the GSO plan: each message's first slot and how many slots it carries */
  private readonly runStart = new Int32Array(MMSG_MAX_BATCH);
  private readonly runLen = new Int32Array(MMSG_MAX_BATCH);
  taken = 0;
  queued = 0;
  /** the mmsghdr arrays' addresses, BigInts made once (docs/performance.md, "Per-packet garbage") */
  private readonly vec: bigint;
  private readonly gsoVec: bigint;
  /** GSO wanted and not (yet) refused; `gsoProven` once the kernel took a GSO message */
  gso: boolean;
  private gsoChecked = false;
  private gsoProven = false;
  /** sendmmsg calls made */
  sendCalls = 0;
  /** messages the kernel took carrying more than one datagram, and the datagrams in them */
  gsoSends = 0;
  gsoSegments = 0;
  /** GSO messages the kernel refused, whose datagrams were sent again one by one */
  gsoRefused = 0;
  /** why GSO was turned off for good (an errno, or a word), or null while it is on or was never wanted */
  gsoOffReason: string | null = null;

  static create(family: 4 | 6, opts: MmsgBatchOptions = {}): MmsgBatch | null {
    const fn = bindSendmmsg();
    return fn ? new MmsgBatch(family, fn, opts.gso ?? true) : null;
  }

  private constructor(
    private readonly family: 4 | 6,
    fn: SendMmsg,
    gso: boolean,
  ) {
    this.fn = fn;
    this.gso = gso;
    const size = this.cmsgOff + MMSG_MAX_BATCH * CMSG_SPACE_U16;
    this.mem = koffi.alloc('uint8', size);
    this.view = Buffer.from(koffi.view(this.mem, size));
    this.view.fill(0);
    this.base = koffi.address(this.mem);
    this.vec = this.base + BigInt(this.hdrOff);
    this.gsoVec = this.base + BigInt(this.gsoHdrOff);
    const nameLen = family === 4 ? 16 : 28;
    // a DataView, not Buffer's writeBigUInt64LE: run for every slot, that made V8 compile Node's helper as a new tunnel started
    const dv = new DataView(this.view.buffer, this.view.byteOffset, size);
    for (let i = 0; i < MMSG_MAX_BATCH; i++) {
      const iov = this.iovOff + i * IOV_SIZE;
      dv.setBigUint64(iov, this.base + BigInt(this.pktOff + i * MMSG_SLOT), true);
      const h = this.hdrOff + i * MMSGHDR_SIZE;
      dv.setBigUint64(h, this.base + BigInt(this.nameOff + i * NAME_SLOT), true); // msg_name
      dv.setUint32(h + 8, nameLen, true); // msg_namelen
      dv.setBigUint64(h + 16, this.base + BigInt(iov), true); // msg_iov
      dv.setBigUint64(h + 24, 1n, true); // msg_iovlen
      // a GSO message's control is fixed (its cmsg); name, iov, their counts and the segment size are filled per flush
      const c = this.cmsgOff + i * CMSG_SPACE_U16;
      dv.setBigUint64(c, BigInt(CMSG_LEN_U16), true); // cmsg_len
      dv.setInt32(c + 8, SOL_UDP, true); // cmsg_level
      dv.setInt32(c + 12, UDP_SEGMENT, true); // cmsg_type
      dv.setBigUint64(this.gsoHdrOff + i * MMSGHDR_SIZE + 32, this.base + BigInt(c), true); // msg_control
    }
  }

  /** Queues a datagram; false when it does not fit (too big, batch full, wrong family). */
  add(buf: Buffer, ep: Endpoint): boolean {
    const at = this.reserve(buf.length, ep);
    if (at < 0) return false;
    buf.copy(this.view, at);
    this.bufs[this.count] = buf;
    this.commit();
    return true;
  }

  /**
   * Room for the next datagram, `len` bytes to `ep`: its offset in `memory`,
   * or -1 when it does not fit. The caller writes the datagram there and then
   * calls `commit`; until then nothing is queued. Writing in place saves the
   * data path a Buffer and a copy per packet (docs/performance.md).
   */
  reserve(len: number, ep: Endpoint): number {
    if (this.count >= MMSG_MAX_BATCH || len > MMSG_SLOT) return -1;
    const addr = sockaddrOf(ep, this.family);
    if (!addr) return -1;
    const i = this.count;
    // iov_len as two 32-bit halves: a BigInt per datagram would be garbage
    putU32le(this.view, this.iovOff + i * IOV_SIZE + 8, len);
    putU32le(this.view, this.iovOff + i * IOV_SIZE + 12, 0);
    this.view.set(addr, this.nameOff + i * NAME_SLOT);
    this.lens[i] = len;
    this.bufs[i] = NO_BUF; // the datagram lives in the slot (see `datagram`)
    this.eps[i] = ep;
    return this.pktOff + i * MMSG_SLOT;
  }

  /** Queues what was written at the last `reserve`. */
  commit(): void {
    this.count++;
  }

  /** The memory `reserve`'s offsets point into. */
  get memory(): Buffer {
    return this.view;
  }

  /** Slot i's datagram as a Buffer of its own, for the dgram fallback (copied out of the slot if it was written in place). */
  datagram(i: number): Buffer {
    const b = this.bufs[i]!;
    if (b !== NO_BUF) return b;
    const off = this.pktOff + i * MMSG_SLOT;
    return Buffer.from(this.view.subarray(off, off + this.lens[i]!));
  }

  /** Sends what is queued; returns how many the kernel took (the rest stays in slots [taken, queued) until `clear`). */
  flush(fd: number): number {
    const n = this.count;
    this.count = 0;
    this.queued = n;
    if (n === 0 || fd < 0) return (this.taken = 0);
    if (this.gso && !this.gsoChecked) {
      this.gsoChecked = true;
      if (!socketKnowsGso(fd)) this.turnGsoOff('the socket does not know UDP_SEGMENT');
    }
    const messages = this.gso && n > 1 ? this.plan(n) : n; // a lone datagram (a ping, a handshake) needs no plan
    if (messages === n) return (this.taken = this.sendPlain(fd, 0, n));
    return (this.taken = this.sendPlanned(fd, n, messages));
  }

  /**
   * Groups the queued datagrams into runs for GSO: same destination, same
   * length except a shorter last one, at most GSO_MAX_SEGMENTS and
   * GSO_MAX_BYTES. Writes one mmsghdr per run and returns how many.
   */
  private plan(n: number): number {
    const v = this.view;
    const maxBytes = GSO_MAX_BYTES[this.family];
    let j = 0;
    for (let i = 0; i < n; ) {
      const ep = this.eps[i]!;
      const size = this.lens[i]!;
      let k = i + 1;
      if (size > 0 && sockaddrs.get(ep)?.noGso !== true) {
        let total = size;
        while (k < n && k - i < GSO_MAX_SEGMENTS) {
          const e = this.eps[k]!;
          const len = this.lens[k]!;
          if ((e !== ep && (e.port !== ep.port || e.address !== ep.address)) || len > size || len === 0 || total + len > maxBytes) break;
          total += len;
          k++;
          if (len < size) break; // only the last segment may be shorter
        }
      }
      const h = this.gsoHdrOff + j * MMSGHDR_SIZE;
      // msg_name, msg_namelen and msg_iov of the run's first slot, copied from its prebuilt header
      v.copyWithin(h, this.hdrOff + i * MMSGHDR_SIZE, this.hdrOff + i * MMSGHDR_SIZE + 24);
      putU32le(v, h + 24, k - i); // msg_iovlen (high half stays 0)
      putU32le(v, h + 40, k - i > 1 ? CMSG_SPACE_U16 : 0); // msg_controllen: no cmsg for a datagram alone
      const c = this.cmsgOff + j * CMSG_SPACE_U16 + 16;
      v[c] = size;
      v[c + 1] = size >>> 8;
      this.runStart[j] = i;
      this.runLen[j] = k - i;
      j++;
      i = k;
    }
    return j;
  }

  /** One sendmmsg of the prebuilt one-datagram messages for slots [from, to); returns how many the kernel took. */
  private sendPlain(fd: number, from: number, to: number): number {
    this.sendCalls++;
    const vec = from === 0 ? this.vec : this.vec + BigInt(from * MMSGHDR_SIZE); // a BigInt only after a refusal
    const sent = this.fn(fd, vec, to - from, MSG_DONTWAIT);
    return Math.max(sent, 0);
  }

  /**
   * Sends the planned messages. A GSO message the kernel refuses is sent
   * again as plain datagrams, so none is lost: the first refusal before any
   * GSO message was taken turns GSO off for good (the kernel or socket cannot),
   * a later one marks that destination (its route's MTU). Any other error
   * stops here, and the caller sends the rest the ordinary way.
   */
  private sendPlanned(fd: number, n: number, messages: number): number {
    let m = 0;
    let taken = 0;
    while (m < messages) {
      this.sendCalls++;
      const r = this.fn(fd, m === 0 ? this.gsoVec : this.gsoVec + BigInt(m * MMSGHDR_SIZE), messages - m, MSG_DONTWAIT);
      if (r > 0) {
        for (const end = m + r; m < end; m++) {
          const segs = this.runLen[m]!;
          taken += segs;
          if (segs > 1) {
            this.gsoSends++;
            this.gsoSegments += segs;
            this.gsoProven = true;
          }
        }
        continue;
      }
      const errno = koffi.errno();
      const segs = this.runLen[m]!;
      if (segs < 2 || !gsoRefusal(errno)) break;
      this.gsoRefused++;
      const start = this.runStart[m]!;
      if (!this.gsoProven) {
        this.turnGsoOff(`errno ${errno}`);
        return taken + this.sendPlain(fd, start, n);
      }
      const c = sockaddrs.get(this.eps[start]!);
      if (c) c.noGso = true;
      const sent = this.sendPlain(fd, start, start + segs);
      taken += sent;
      if (sent < segs) break;
      m++;
    }
    return taken;
  }

  private turnGsoOff(why: string): void {
    this.gso = false;
    this.gsoOffReason = why;
  }

  /** Lets go of the last flush's datagrams, so no buffer is kept alive by a slot. */
  clear(): void {
    for (let i = 0; i < this.queued; i++) {
      this.bufs[i] = NO_BUF;
      this.eps[i] = NO_EP;
    }
    this.queued = this.taken = 0;
  }
}
