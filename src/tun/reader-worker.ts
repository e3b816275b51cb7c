// The TUN reader thread: blocks in poll()/read() so the event loop never does,
// and hands packets over in batches (one transferred ArrayBuffer per batch)
// because a postMessage costs far more than a read. See docs/performance.md.
import { parentPort, workerData } from 'node:worker_threads';
import { bindLibc, POLLIN } from './libc.js';

interface ReaderData {
  fd: number;
  mtu: number;
  batchPackets: number;
  stop: SharedArrayBuffer;
}

const POLL_TIMEOUT_MS = 100; // how soon close() is noticed
const EAGAIN = 11;
const d = workerData as ReaderData;
const libc = bindLibc();
const stop = new Int32Array(d.stop);
const pfd = Buffer.alloc(8);
pfd.writeInt32LE(d.fd, 0);
pfd.writeInt16LE(POLLIN, 4);
const slot = d.mtu + 64; // room for an oversized packet so it is seen, not truncated silently

while (Atomics.load(stop, 0) === 0) {
  const r = libc.poll(pfd, 1, POLL_TIMEOUT_MS);
  if (r <= 0) continue;
  const ab = new ArrayBuffer(slot * d.batchPackets);
  const bytes = new Uint8Array(ab);
  const lengths: number[] = [];
  let off = 0;
  while (lengths.length < d.batchPackets) {
    const n = libc.read(d.fd, bytes.subarray(off, off + slot), slot);
    if (n <= 0) {
      if (n < 0 && libc.errno() !== EAGAIN && lengths.length === 0) Atomics.store(stop, 0, 2);
      break;
    }
    lengths.push(n);
    off += slot;
  }
  if (lengths.length > 0) parentPort!.postMessage({ ab, slot, lengths }, [ab]);
}
