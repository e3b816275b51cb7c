// The shared-memory ring between reader threads and the event loop: order,
// contents, wrap-around and a full ring (the producer waits, nothing is lost).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { createRing, RingConsumer } from '../../src/util/shm-ring.js';

const lengthOf = (i: number, max: number): number => (i * 7919) % (max + 1);

test('records cross a small ring in order and intact while the producer often waits for room', async () => {
  const count = 20_000;
  const maxLen = 1500;
  const ring = createRing(8192); // ~10 records: the ring is full most of the time
  let next = 0;
  let bad = '';
  const done = new Promise<void>((resolve) => {
    const c = new RingConsumer(ring, (bytes, offsets, lengths, metas) => {
      for (let r = 0; r < offsets.length; r++) {
        const i = next++;
        if (metas[r] !== i || lengths[r] !== lengthOf(i, maxLen)) bad ||= `record ${i}: meta ${metas[r]} length ${lengths[r]}`;
        for (let k = 0; k < lengths[r]!; k++) if (bytes[offsets[r]! + k] !== ((i + k) & 0xff)) bad ||= `record ${i} byte ${k}`;
      }
      if (next === count) {
        c.stop();
        resolve();
      }
    });
    c.start();
  });
  const w = new Worker(new URL('./fixtures/ring-producer.js', import.meta.url), { workerData: { ring, count, maxLen } });
  const last = new Promise<{ stoppedReserve: number }>((r) => w.once('message', r));
  await done;
  assert.equal(bad, '');
  assert.equal(next, count);
  assert.equal((await last).stoppedReserve, -1, 'after stop, reserve() refuses');
  await w.terminate();
});

test('ring sizes that are not powers of two are refused', () => {
  assert.throws(() => createRing(1000), /power of two/);
});
