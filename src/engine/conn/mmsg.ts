// sendmmsg(2) through koffi: one system call for a batch of datagrams. The TUN
// reader hands over up to 64 packets at a time; sending their encrypted forms
// with one dgram.send each costs a libuv request and a syscall per packet
// (docs/performance.md). Native memory for the packets, addresses, iovecs and
// mmsghdrs is allocated once; each batch copies packets in and fills lengths.
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

interface CachedSockaddr {
  address: string;
  port: number;
  family: 4 | 6;
  bytes: Buffer;
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
  sockaddrs.set(ep, { address: ep.address, port: ep.port, family, bytes: b });
  return b;
}

type SendMmsg = (fd: number, vec: unknown, vlen: number, flags: number) => number;
let sendmmsgFn: SendMmsg | null | undefined;

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

const NO_BUF = Buffer.alloc(0);
const NO_EP: Endpoint = { address: '', port: 0 };

/** One batch buffer per socket family. */
export class MmsgBatch {
  private readonly mem: unknown;
  private readonly view: Buffer;
  private readonly base: bigint;
  private readonly pktOff = 0;
  private readonly nameOff = MMSG_MAX_BATCH * MMSG_SLOT;
  private readonly iovOff = this.nameOff + MMSG_MAX_BATCH * NAME_SLOT;
  private readonly hdrOff = this.iovOff + MMSG_MAX_BATCH * IOV_SIZE;
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
  taken = 0;
  queued = 0;
  /** the mmsghdr array's address, a BigInt made once (docs/performance.md, "Per-packet garbage") */
  private readonly vec: bigint;

  static create(family: 4 | 6): MmsgBatch | null {
    const fn = bindSendmmsg();
    return fn ? new MmsgBatch(family, fn) : null;
  }

  private constructor(
    private readonly family: 4 | 6,
    fn: SendMmsg,
  ) {
    this.fn = fn;
    const size = this.hdrOff + MMSG_MAX_BATCH * MMSGHDR_SIZE;
    this.mem = koffi.alloc('uint8', size);
    this.view = Buffer.from(koffi.view(this.mem, size));
    this.view.fill(0);
    this.base = koffi.address(this.mem);
    this.vec = this.base + BigInt(this.hdrOff);
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
    return Buffer.from(this.view.subarray(off, off + this.view.readUInt32LE(this.iovOff + i * IOV_SIZE + 8)));
  }

  /** Sends what is queued; returns how many the kernel took (the rest stays in slots [taken, queued) until `clear`). */
  flush(fd: number): number {
    const n = this.count;
    this.count = 0;
    this.queued = n;
    if (n === 0) return (this.taken = 0);
    const sent = fd >= 0 ? this.fn(fd, this.vec, n, MSG_DONTWAIT) : -1;
    return (this.taken = sent > 0 ? sent : 0);
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
