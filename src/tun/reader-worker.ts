// The TUN reader thread: blocks in poll()/read() so the event loop never does,
// and hands packets over through a shared-memory ring (util/shm-ring.ts), one
// wake-up per batch. With offloads on, each read starts with a virtio_net_hdr
// and may be a TCP super-packet, which is split here, off the event loop, into
// the ring directly. See docs/performance.md.
import { workerData } from 'node:worker_threads';
import { HANDBACK_META, ThreadReading, type ReaderPolicy } from '../util/reader-mode.js';
import { RingProducer, type RingBuffers } from '../util/shm-ring.js';
import { bindLibc, POLLIN } from './libc.js';
import { completeChecksum, GSO_NONE, gsoSplit, readVnetHdr, VNET_F_NEEDS_CSUM, VNET_HDR_LEN } from './offload.js';
import { READER_DROPPED, READER_GSO_READS, READER_SEGMENTS } from './reader-slots.js';

interface ReaderData {
  fd: number;
  mtu: number;
  batchPackets: number;
  ring: RingBuffers;
  vnet: boolean;
  policy: ReaderPolicy;
}

const POLL_TIMEOUT_MS = 100; // how soon close() is noticed
const EAGAIN = 11;
const MAX_GSO_PACKET = 65535;
const d = workerData as ReaderData;
const libc = bindLibc();
const ring = new RingProducer(d.ring);
const ctl = ring.ctl;
const pfd = Buffer.alloc(8);
pfd.writeInt32LE(d.fd, 0);
pfd.writeInt16LE(POLLIN, 4);
// room for an oversized packet so it is seen, not truncated silently
const readMax = d.vnet ? VNET_HDR_LEN + MAX_GSO_PACKET : d.mtu + 64;
const staging = new Uint8Array(readMax);
const place = (len: number): number => ring.reserve(len);

/** Moves one read of n bytes from `staging` into the ring; false if it was dropped. */
function take(n: number): boolean {
  if (!d.vnet) {
    const at = ring.reserve(n);
    if (at >= 0) ring.data.set(staging.subarray(0, n), at);
    return true;
  }
  if (n < VNET_HDR_LEN) return false;
  const h = readVnetHdr(staging);
  if (h.gsoType === GSO_NONE) {
    const len = n - VNET_HDR_LEN;
    // finish the checksum in staging: a refused packet must not reach the ring
    if (h.flags & VNET_F_NEEDS_CSUM && !completeChecksum(staging, VNET_HDR_LEN, n, h.csumStart, h.csumOffset)) return false;
    const at = ring.reserve(len);
    if (at >= 0) ring.data.set(staging.subarray(VNET_HDR_LEN, n), at);
    return true;
  }
  const segments = gsoSplit(staging, VNET_HDR_LEN, n, h, ring.data, place);
  if (segments < 0) return false;
  Atomics.add(ctl, READER_GSO_READS, 1);
  Atomics.add(ctl, READER_SEGMENTS, segments);
  return true;
}

const turn = new ThreadReading(ctl, d.policy);
let failed = false; // a read error on a readable fd: the device is gone
while (!ring.stopped && !failed) {
  if (!turn.awaitTurn(POLL_TIMEOUT_MS)) {
    if (turn.retired) break; // ends the thread with code 0
    continue;
  }
  const r = libc.poll(pfd, 1, POLL_TIMEOUT_MS);
  let reads = 0;
  if (r > 0) {
    for (; reads < d.batchPackets; reads++) {
      const n = libc.read(d.fd, staging, readMax);
      if (n <= 0) {
        failed = n < 0 && libc.errno() !== EAGAIN && reads === 0;
        break;
      }
      if (!take(n)) Atomics.add(ctl, READER_DROPPED, 1);
    }
  }
  if (turn.read(reads)) ring.reserve(0, HANDBACK_META);
  ring.commit();
}
if (failed) process.exitCode = 1;
