// The UDP reader thread: takes the WireGuard sockets' receive side away from
// libuv (which allocates and emits one buffer and one event per datagram) and
// drains them with recvmmsg, up to 64 datagrams per system call, handing each
// batch over through a shared-memory ring — the design of the TUN reader
// (docs/performance.md). Blocking calls happen here, never on the event loop.
// A record is the sender's sockaddr (NAME_SLOT bytes) then the datagram; meta 1
// marks a datagram cut short.
import { workerData } from 'node:worker_threads';
import { koffi } from '../../util/koffi.js';
import { HANDBACK_META, ThreadReading, type ReaderPolicy } from '../../util/reader-mode.js';
import { RingProducer, type RingBuffers } from '../../util/shm-ring.js';

interface ReaderData {
  fds: number[];
  ring: RingBuffers;
  policy: ReaderPolicy;
}

const RECV_BATCH = 64;
const RECV_SLOT = 2048;
const NAME_SLOT = 28;
const IOV_SIZE = 16;
const MMSGHDR_SIZE = 64;
const POLL_TIMEOUT_MS = 100; // how soon a stop is noticed
const POLLIN = 0x1;
const POLLERR = 0x8;
const POLLNVAL = 0x20;
const MSG_DONTWAIT = 0x40;
const MSG_TRUNC = 0x20;

const d = workerData as ReaderData;
const libc = koffi.load('libc.so.6');
const poll = libc.func('int poll(void *, unsigned long, int)') as (fds: Buffer, n: number, t: number) => number;
const recvmmsg = libc.func('int recvmmsg(int, void *, unsigned int, int, void *)') as (fd: number, vec: unknown, n: number, flags: number, t: null) => number;
const ring = new RingProducer(d.ring);

const pktOff = 0;
const nameOff = RECV_BATCH * RECV_SLOT;
const iovOff = nameOff + RECV_BATCH * NAME_SLOT;
const hdrOff = iovOff + RECV_BATCH * IOV_SIZE;
const size = hdrOff + RECV_BATCH * MMSGHDR_SIZE;
const mem = koffi.alloc('uint8', size);
const view = Buffer.from(koffi.view(mem, size));
const base = koffi.address(mem);
const vec = base + BigInt(hdrOff); // the mmsghdr array
view.fill(0);
for (let i = 0; i < RECV_BATCH; i++) {
  const iov = iovOff + i * IOV_SIZE;
  view.writeBigUInt64LE(base + BigInt(pktOff + i * RECV_SLOT), iov);
  view.writeBigUInt64LE(BigInt(RECV_SLOT), iov + 8);
  const h = hdrOff + i * MMSGHDR_SIZE;
  view.writeBigUInt64LE(base + BigInt(nameOff + i * NAME_SLOT), h);
  view.writeBigUInt64LE(base + BigInt(iov), h + 16);
  view.writeBigUInt64LE(1n, h + 24);
}

const pfds = Buffer.alloc(8 * d.fds.length);
d.fds.forEach((fd, i) => {
  pfds.writeInt32LE(fd, i * 8);
  pfds.writeInt16LE(POLLIN, i * 8 + 4);
});

const turn = new ThreadReading(ring.ctl, d.policy);
outer: while (!ring.stopped) {
  if (!turn.awaitTurn(POLL_TIMEOUT_MS)) {
    if (turn.retired) break; // ends the thread with code 0
    continue;
  }
  const r = poll(pfds, d.fds.length, POLL_TIMEOUT_MS);
  let got = 0;
  for (let f = 0; r > 0 && f < d.fds.length; f++) {
    const revents = pfds.readInt16LE(f * 8 + 6);
    if (revents & (POLLERR | POLLNVAL)) break outer;
    if (!(revents & POLLIN)) continue;
    for (let i = 0; i < RECV_BATCH; i++) view.writeUInt32LE(NAME_SLOT, hdrOff + i * MMSGHDR_SIZE + 8);
    const n = recvmmsg(d.fds[f]!, vec, RECV_BATCH, MSG_DONTWAIT, null);
    if (n <= 0) continue;
    got += n;
    for (let i = 0; i < n; i++) {
      const h = hdrOff + i * MMSGHDR_SIZE;
      const len = Math.min(view.readUInt32LE(h + 56), RECV_SLOT);
      // a datagram larger than a slot was cut short: report it as such so it is counted, not parsed
      const truncated = view.readInt32LE(h + 48) & MSG_TRUNC ? 1 : 0;
      const at = ring.reserve(NAME_SLOT + (truncated ? 0 : len), truncated);
      if (at < 0) break outer;
      ring.data.set(view.subarray(nameOff + i * NAME_SLOT, nameOff + (i + 1) * NAME_SLOT), at);
      if (!truncated) ring.data.set(view.subarray(pktOff + i * RECV_SLOT, pktOff + i * RECV_SLOT + len), at + NAME_SLOT);
    }
    ring.commit();
  }
  if (turn.read(got)) {
    ring.reserve(0, HANDBACK_META);
    ring.commit();
  }
}
