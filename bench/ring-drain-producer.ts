// Worker of bench/ring-drain.ts: writes `records` records of `bytes` each into the ring, committing every 45 (one
// TUN super-packet's segments), then waits for the stop flag.
import { workerData } from 'node:worker_threads';
import { RingProducer, type RingBuffers } from '../src/util/shm-ring.js';

const { ring, records, bytes } = workerData as { ring: RingBuffers; records: number; bytes: number };
const SEGMENTS_PER_READ = 45;
const p = new RingProducer(ring);
for (let i = 0; i < records; i++) {
  const at = p.reserve(bytes, i);
  if (at < 0) break;
  p.data.fill(i & 0xff, at, at + bytes); // as a read() fills it
  if (i % SEGMENTS_PER_READ === SEGMENTS_PER_READ - 1) p.commit();
}
p.commit();
while (!p.stopped) Atomics.wait(p.ctl, 2, 0, 10);
