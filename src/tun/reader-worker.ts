// The TUN reader thread: blocks in poll()/read() so the event loop never does,
// and hands packets over in batches (one transferred ArrayBuffer per batch)
// because a postMessage costs far more than a read. With offloads on, each read
// starts with a virtio_net_hdr and may be a TCP super-packet, which is split
// here, off the event loop. See docs/performance.md.
import { parentPort, workerData } from 'node:worker_threads';
import { bindLibc, POLLIN } from './libc.js';
import { completeChecksum, GSO_NONE, gsoSplit, gsoSplitSize, readVnetHdr, VNET_F_NEEDS_CSUM, VNET_HDR_LEN } from './offload.js';
import { READER_DROPPED, READER_GSO_READS, READER_SEGMENTS, READER_STOP } from './reader-slots.js';

interface ReaderData {
  fd: number;
  mtu: number;
  batchPackets: number;
  /** Int32 slots: the stop flag and the counters (reader-slots.ts) */
  shared: SharedArrayBuffer;
  vnet: boolean;
}

const POLL_TIMEOUT_MS = 100; // how soon close() is noticed
const EAGAIN = 11;
const MAX_GSO_PACKET = 65535;
const d = workerData as ReaderData;
const libc = bindLibc();
const shared = new Int32Array(d.shared);
const pfd = Buffer.alloc(8);
pfd.writeInt32LE(d.fd, 0);
pfd.writeInt16LE(POLLIN, 4);
// room for an oversized packet so it is seen, not truncated silently
const readMax = d.vnet ? VNET_HDR_LEN + MAX_GSO_PACKET : d.mtu + 64;
const staging = new Uint8Array(readMax);
// one batch of ordinary packets, or a super-packet's segments (payload plus ~45 headers) on top
const outCap = d.batchPackets * (d.mtu + 64) + 2 * MAX_GSO_PACKET;
const out = new Uint8Array(outCap);
let pos = 0;
let lengths: number[] = [];

function post(): void {
  if (lengths.length === 0) return;
  const ab = out.buffer.slice(0, pos);
  parentPort!.postMessage({ ab, lengths }, [ab]);
  pos = 0;
  lengths = [];
}

/** Moves one read of n bytes from `staging` into the batch; false if it was dropped. */
function take(n: number): boolean {
  if (!d.vnet) {
    if (pos + n > outCap) post();
    out.set(staging.subarray(0, n), pos);
    pos += n;
    lengths.push(n);
    return true;
  }
  if (n < VNET_HDR_LEN) return false;
  const h = readVnetHdr(staging);
  if (h.gsoType === GSO_NONE) {
    const len = n - VNET_HDR_LEN;
    if (pos + len > outCap) post();
    out.set(staging.subarray(VNET_HDR_LEN, n), pos);
    if (h.flags & VNET_F_NEEDS_CSUM && !completeChecksum(out, pos, pos + len, h.csumStart, h.csumOffset)) return false;
    pos += len;
    lengths.push(len);
    return true;
  }
  const need = gsoSplitSize(staging, VNET_HDR_LEN, n, h);
  if (need < 0 || need > outCap) return false;
  if (pos + need > outCap) post();
  const before = lengths.length;
  const next = gsoSplit(staging, VNET_HDR_LEN, n, h, out, pos, lengths);
  if (next < 0) return false;
  pos = next;
  Atomics.add(shared, READER_GSO_READS, 1);
  Atomics.add(shared, READER_SEGMENTS, lengths.length - before);
  return true;
}

while (Atomics.load(shared, READER_STOP) === 0) {
  const r = libc.poll(pfd, 1, POLL_TIMEOUT_MS);
  if (r <= 0) continue;
  let reads = 0;
  while (reads < d.batchPackets && lengths.length < d.batchPackets) {
    const n = libc.read(d.fd, staging, readMax);
    if (n <= 0) {
      if (n < 0 && libc.errno() !== EAGAIN && reads === 0) Atomics.store(shared, READER_STOP, 2);
      break;
    }
    reads++;
    if (!take(n)) Atomics.add(shared, READER_DROPPED, 1);
  }
  post();
}
