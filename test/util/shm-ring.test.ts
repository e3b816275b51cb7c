// The shared-memory ring between reader threads and the event loop: order,
// contents, wrap-around and a full ring (the producer waits, nothing is lost).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { createRing, RingConsumer, RingProducer } from '../../src/util/shm-ring.js';

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

test('in place: records are visited in order and intact across wrap-arounds, stay so until their batch ends, and a batch holds at most a quarter of the ring', async () => {
  const count = 20_000;
  const maxLen = 1500;
  const ring = createRing(8192); // ~10 records: the producer waits for room most of the time, ready to overwrite
  let next = 0;
  let batches = 0;
  let bad = '';
  let visited: { i: number; data: Buffer; off: number; len: number }[] = [];
  const intact = (i: number, data: Buffer, off: number, len: number): boolean => {
    for (let k = 0; k < len; k++) if (data[off + k] !== ((i + k) & 0xff)) return false;
    return true;
  };
  const done = new Promise<void>((resolve) => {
    const c = RingConsumer.inPlace(ring, {
      record: (data, off, len, meta) => {
        const i = next++;
        // a walk through overwritten headers would never end: fail at once
        if (i >= count) throw new Error(`more records than were written: ${bad}`);
        if (meta !== i || len !== lengthOf(i, maxLen)) bad ||= `record ${i}: meta ${meta} length ${len}`;
        if (!intact(i, data, off, len)) bad ||= `record ${i} differs`;
        if (off + len > 8192) bad ||= `record ${i} runs past the ring's end`;
        visited.push({ i, data, off, len });
      },
      end: () => {
        batches++;
        // a batch stops at the first record past a quarter of the ring (8 bytes of header, bodies padded to 8)
        const before = visited.slice(0, -1).reduce((n, v) => n + 8 + ((v.len + 7) & ~7), 0);
        if (before >= 8192 / 4) bad ||= `a batch of ${visited.length} records held ${before} bytes before its last`;
        // the producer is waiting for room: had any been freed before end(), it would have written over these
        for (const v of visited) if (!intact(v.i, v.data, v.off, v.len)) bad ||= `record ${v.i} overwritten before the end of its batch`;
        visited = [];
        if (next === count) {
          c.stop();
          resolve();
        }
      },
    });
    c.start();
  });
  const w = new Worker(new URL('./fixtures/ring-producer.js', import.meta.url), { workerData: { ring, count, maxLen } });
  const last = new Promise<{ stoppedReserve: number }>((r) => w.once('message', r));
  await done;
  assert.equal(bad, '');
  assert.equal(next, count);
  assert.ok(batches > 1 && batches <= count, `${batches} batches`);
  assert.equal((await last).stoppedReserve, -1, 'after stop, reserve() refuses');
  await w.terminate();
});

test('visiting with a copy (the default): what a visitor keeps stays intact after the ring is written over', async () => {
  const ring = createRing(1024);
  const p = new RingProducer(ring);
  const kept: { i: number; view: Buffer }[] = [];
  let ends = 0;
  const c = RingConsumer.visiting(
    ring,
    { record: (data, off, len, meta) => kept.push({ i: meta, view: data.subarray(off, off + len) }), end: () => ends++ },
    false,
  );
  c.start();
  const deadline = Date.now() + 10_000;
  for (let i = 0; i < 40; i++) {
    // 100-byte records in a 1 KiB ring: the room of record i is written over by record i + 8 or so
    while (kept.length < i - 4 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    const at = p.reserve(100, i);
    p.data.fill(i, at, at + 100);
    p.commit();
  }
  while (kept.length < 40 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
  c.stop();
  assert.equal(kept.length, 40);
  assert.ok(ends >= 1);
  for (const { i, view } of kept)
    assert.ok(
      view.every((b) => b === i),
      `record ${i} changed after it was visited`,
    );
});

test('ring sizes that are not powers of two are refused', () => {
  assert.throws(() => createRing(1000), /power of two/);
});
