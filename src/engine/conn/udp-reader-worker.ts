// The UDP reader thread: takes the WireGuard sockets' receive side away from
// libuv (which allocates and emits one buffer and one event per datagram) and
// drains them with recvmmsg, up to 64 datagrams per system call, handing each
// batch over through a shared-memory ring — the design of the TUN reader
// (docs/performance.md). Blocking calls happen here, never on the event loop.
// A record is the sender's sockaddr (NAME_SLOT bytes) then the datagram; meta 1
// marks a datagram cut short.
//
// UDP GRO: while this thread has the sockets it turns UDP_GRO on, so one read
// can bring many same-size datagrams of one sender merged, with their segment
// size in a control message; each is split here into records of one datagram.
// Before it hands reading back it drains the sockets with UDP_GRO still on (the
// kernel gives a merged read its segment size only while the option is on),
// turns it off, and drains again: what was queued merged in between comes
// without its size and is split by its headers (gro-split.ts), so what libuv
// reads next was queued unmerged: libuv's reads collect no control message
// (docs/performance.md, "UDP GRO on receive").
import { workerData } from 'node:worker_threads';
import { koffi } from '../../util/koffi.js';
import { HANDBACK_META, ThreadReading, type ReaderPolicy } from '../../util/reader-mode.js';
import { RingProducer, type RingBuffers } from '../../util/shm-ring.js';
import { UDP_GRO_DATAGRAMS, UDP_GRO_READS, UDP_GRO_SPLIT_FAILURES } from './udp-reader-slots.js';
import { SPLIT_DONE, SPLIT_FAILED, splitMerged } from './gro-split.js';

interface ReaderData {
  fds: number[];
  ring: RingBuffers;
  policy: ReaderPolicy;
  /** turn UDP_GRO on while this thread reads */
  gro: boolean;
  /** the hand-back threshold (reader-mode.ts QUIET_PACKETS unless a test sets it) */
  quietPackets?: number;
}

const RECV_BATCH = 64;
/** a slot for one datagram when nothing is merged */
const RECV_SLOT = 2048;
/**
 * a slot for one merged read: the kernel merges up to 64 KiB. Pages of a slot
 * are touched only as far as the reads reach, so unmerged traffic keeps the
 * resident size of 2 KiB slots.
 */
const RECV_SLOT_GRO = 65536;
const NAME_SLOT = 28;
const IOV_SIZE = 16;
const MMSGHDR_SIZE = 64;
/** one cmsghdr (16 bytes) and its int, padded to 8: CMSG_SPACE(sizeof(int)) is 24 */
const CONTROL_SLOT = 32;
const POLL_TIMEOUT_MS = 100; // how soon a stop is noticed
/**
 * recvmmsg calls per socket when draining before a hand-back: 256 × 64 reads
 * cover every datagram a 4 MiB receive buffer can hold (its truesize is ≥ ~768
 * bytes even for a keepalive), so everything queued merged is read here.
 */
const DRAIN_MAX_CALLS = 256;
const POLLIN = 0x1;
const POLLERR = 0x8;
const POLLNVAL = 0x20;
const MSG_DONTWAIT = 0x40;
const MSG_TRUNC = 0x20;
const SOL_UDP = 17;
const UDP_GRO = 104; // linux/udp.h

const d = workerData as ReaderData;
const libc = koffi.load('libc.so.6');
const poll = libc.func('int poll(void *, unsigned long, int)') as (fds: Buffer, n: number, t: number) => number;
const recvmmsg = libc.func('int recvmmsg(int, void *, unsigned int, int, void *)') as (fd: number, vec: unknown, n: number, flags: number, t: null) => number;
const setsockopt = libc.func('int setsockopt(int, int, int, void *, uint32)') as (fd: number, level: number, name: number, val: Buffer, len: number) => number;
const ring = new RingProducer(d.ring);
const ctl = new Int32Array(d.ring.ctl);

const slot = d.gro ? RECV_SLOT_GRO : RECV_SLOT;
const pktOff = 0;
const nameOff = RECV_BATCH * slot;
const iovOff = nameOff + RECV_BATCH * NAME_SLOT;
const hdrOff = iovOff + RECV_BATCH * IOV_SIZE;
const controlOff = hdrOff + RECV_BATCH * MMSGHDR_SIZE;
const size = controlOff + RECV_BATCH * CONTROL_SLOT;
// mapped, not malloc'd: with UDP_GRO the block is megabytes, and malloc keeps a freed block of that size in the
// thread's arena (its mmap threshold rises after the first free), so every thread that had run would leave it
// resident in an idle daemon; munmap at the end returns it to the system. Anonymous pages start zeroed.
const PROT_READ_WRITE = 0x3;
const MAP_PRIVATE_ANONYMOUS = 0x22;
const mmap = libc.func('void *mmap(void *, size_t, int, int, int, long)') as (
  a: null,
  len: number,
  prot: number,
  flags: number,
  fd: number,
  off: number,
) => unknown;
const munmap = libc.func('int munmap(void *, size_t)') as (a: unknown, len: number) => number;
const mapped = mmap(null, size, PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS, -1, 0);
const isMapped = mapped !== null && koffi.address(mapped) !== 0xffffffffffffffffn;
const mem = isMapped ? mapped : koffi.alloc('uint8', size);
const view = Buffer.from(koffi.view(mem, size));
const base = koffi.address(mem);
const vec = base + BigInt(hdrOff); // the mmsghdr array
// only the headers are cleared: filling the packet slots would make every page of them resident
view.fill(0, nameOff);
for (let i = 0; i < RECV_BATCH; i++) {
  const iov = iovOff + i * IOV_SIZE;
  view.writeBigUInt64LE(base + BigInt(pktOff + i * slot), iov);
  view.writeBigUInt64LE(BigInt(slot), iov + 8);
  const h = hdrOff + i * MMSGHDR_SIZE;
  view.writeBigUInt64LE(base + BigInt(nameOff + i * NAME_SLOT), h);
  view.writeBigUInt64LE(base + BigInt(iov), h + 16);
  view.writeBigUInt64LE(1n, h + 24);
  if (d.gro) view.writeBigUInt64LE(base + BigInt(controlOff + i * CONTROL_SLOT), h + 32); // msg_control
}

const pfds = Buffer.alloc(8 * d.fds.length);
d.fds.forEach((fd, i) => {
  pfds.writeInt32LE(fd, i * 8);
  pfds.writeInt16LE(POLLIN, i * 8 + 4);
});

const one = Buffer.alloc(4);
const zero = Buffer.alloc(4);
one.writeInt32LE(1);
/** whether UDP_GRO is on; false for good once the kernel refuses it (before Linux 5.0) */
let groOn = false;
let groUsable = d.gro;

function setGro(on: boolean): void {
  if (!groUsable || groOn === on) return;
  for (const fd of d.fds) {
    if (setsockopt(fd, SOL_UDP, UDP_GRO, on ? one : zero, 4) !== 0 && on) {
      groUsable = false; // the kernel has no UDP_GRO: read as without it
      for (const f of d.fds) setsockopt(f, SOL_UDP, UDP_GRO, zero, 4);
      return;
    }
  }
  groOn = on;
}

/** The segment size of slot i's read when the kernel merged it, else 0. */
function segmentSize(h: number, i: number): number {
  if (view.readUInt32LE(h + 40) < 20) return 0; // msg_controllen: no cmsg of an int
  const c = controlOff + i * CONTROL_SLOT;
  if (view.readInt32LE(c + 8) !== SOL_UDP || view.readInt32LE(c + 12) !== UDP_GRO) return 0;
  return view.readInt32LE(c + 16);
}

/** One recvmmsg on socket f into the ring: the number of datagrams, 0 when none, -1 once the ring is stopped. */
function readOnce(f: number): number {
  for (let i = 0; i < RECV_BATCH; i++) {
    const h = hdrOff + i * MMSGHDR_SIZE;
    view.writeUInt32LE(NAME_SLOT, h + 8);
    if (d.gro) view.writeUInt32LE(CONTROL_SLOT, h + 40); // msg_controllen (its high half stays 0), which the kernel rewrites; no BigInt per call
  }
  const n = recvmmsg(d.fds[f]!, vec, RECV_BATCH, MSG_DONTWAIT, null);
  if (n <= 0) return 0;
  let datagrams = 0;
  for (let i = 0; i < n; i++) {
    const h = hdrOff + i * MMSGHDR_SIZE;
    const len = Math.min(view.readUInt32LE(h + 56), slot);
    const name = view.subarray(nameOff + i * NAME_SLOT, nameOff + (i + 1) * NAME_SLOT);
    const p = pktOff + i * slot;
    // a datagram larger than a slot was cut short: report it as such so it is counted, not parsed
    const truncated = view.readInt32LE(h + 48) & MSG_TRUNC ? 1 : 0;
    const seg = truncated || !d.gro ? 0 : segmentSize(h, i);
    if (seg === 0 && !truncated && splitByHeaders) {
      const r = splitBySegmentHeaders(name, view.subarray(p, p + len));
      if (r < 0) return -1;
      if (r > 0) {
        datagrams += r;
        continue;
      }
    }
    if (seg > 0 && seg < len) {
      let segs = 0;
      for (let off = 0; off < len; off += seg, segs++) {
        const end = Math.min(off + seg, len);
        const at = ring.reserve(NAME_SLOT + end - off, 0);
        if (at < 0) return -1;
        ring.data.set(name, at);
        ring.data.set(view.subarray(p + off, p + end), at + NAME_SLOT);
      }
      Atomics.add(ctl, UDP_GRO_READS, 1);
      Atomics.add(ctl, UDP_GRO_DATAGRAMS, segs);
      datagrams += segs;
      continue;
    }
    const at = ring.reserve(NAME_SLOT + (truncated ? 0 : len), truncated);
    if (at < 0) return -1;
    ring.data.set(name, at);
    if (!truncated) ring.data.set(view.subarray(p, p + len), at + NAME_SLOT);
    datagrams++;
  }
  ring.commit();
  return datagrams;
}

/**
 * Set while reads may bring datagrams the kernel merged but without their segment size: after UDP_GRO was turned
 * off, a merged read queued before that comes with no control message (the kernel adds it only while the option is on).
 */
let splitByHeaders = false;
let splitName: Buffer | null = null;
let splitSegments = 0;
let splitStopped = false;
/** one segment of a read split by its headers, written as a record of its own (the reader's name, then the bytes) */
const writeSegment = (seg: Buffer): void => {
  splitSegments++;
  if (splitStopped) return;
  const at = ring.reserve(NAME_SLOT + seg.length, 0);
  if (at < 0) {
    splitStopped = true;
    return;
  }
  ring.data.set(splitName!, at);
  ring.data.set(seg, at + NAME_SLOT);
};

/** A read with no segment size split by its headers into records: the datagrams written, 0 when it is one datagram, -1 once the ring is stopped. */
function splitBySegmentHeaders(name: Buffer, buf: Buffer): number {
  splitName = name;
  splitSegments = 0;
  splitStopped = false;
  const r = splitMerged(buf, writeSegment);
  if (splitStopped) return -1;
  if (r === SPLIT_FAILED) Atomics.add(ctl, UDP_GRO_SPLIT_FAILURES, 1); // written whole by the caller, to fail authentication
  if (r !== SPLIT_DONE) return 0;
  Atomics.add(ctl, UDP_GRO_READS, 1);
  Atomics.add(ctl, UDP_GRO_DATAGRAMS, splitSegments);
  return splitSegments;
}

/** Every socket read until empty (or DRAIN_MAX_CALLS): false once the ring is stopped. */
function drainAll(): boolean {
  for (let f = 0; f < d.fds.length; f++) {
    for (let k = 0; k < DRAIN_MAX_CALLS; k++) {
      const n = readOnce(f);
      if (n < 0) return false;
      if (n === 0) break;
    }
  }
  return true;
}

/**
 * Before a hand-back: everything queued read while UDP_GRO is still on (each merged read with its segment size), then
 * UDP_GRO off, then what was queued merged in between read and split by its headers; libuv then finds only unmerged
 * datagrams.
 */
function drainUnmerged(): boolean {
  if (!groOn) return true;
  if (!drainAll()) return false;
  setGro(false);
  splitByHeaders = true;
  try {
    return drainAll();
  } finally {
    splitByHeaders = false;
  }
}

const turn = new ThreadReading(ring.ctl, d.policy, d.quietPackets);
let fdFailed = false;
outer: while (!ring.stopped) {
  if (!turn.awaitTurn(POLL_TIMEOUT_MS)) {
    if (turn.retired) break; // ends the thread with code 0
    continue;
  }
  setGro(true);
  const r = poll(pfds, d.fds.length, POLL_TIMEOUT_MS);
  let got = 0;
  for (let f = 0; r > 0 && f < d.fds.length; f++) {
    const revents = pfds.readInt16LE(f * 8 + 6);
    if (revents & (POLLERR | POLLNVAL)) {
      fdFailed = true;
      break outer;
    }
    if (!(revents & POLLIN)) continue;
    const n = readOnce(f);
    if (n < 0) break outer;
    got += n;
  }
  if (turn.read(got)) {
    if (!drainUnmerged()) break;
    ring.reserve(0, HANDBACK_META);
    ring.commit();
  }
}
// the sockets outlive this thread (the event loop closes them after it ends): leave them unmerged for libuv
if (!fdFailed) setGro(false);
if (isMapped) munmap(mem, size);
else koffi.free(mem);
