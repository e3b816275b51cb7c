// Control bounds V8's heap growth between full collections when it starts
// (process-wide, read by V8 at each full collection): the default bound, or
// the one its options give; a bound outside 1-1000 % is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CONTROL_HEAP_GROWING_PERCENT } from '../../src/control/server.js';
import { boundHeapGrowth, heapGrowthBound } from '../../src/util/heap-growth.js';
import { harness } from './helpers.js';

test('control start sets its bound on heap growth, the default or the given one', async () => {
  const h = await harness();
  try {
    assert.equal(heapGrowthBound(), CONTROL_HEAP_GROWING_PERCENT);
  } finally {
    await h.close();
  }
  const h2 = await harness({ heapGrowingPercent: 150 });
  try {
    assert.equal(heapGrowthBound(), 150);
  } finally {
    await h2.close();
  }
  // null leaves the bound as it was (V8's own, in a process that set none)
  const h3 = await harness({ heapGrowingPercent: null });
  try {
    assert.equal(heapGrowthBound(), 150);
  } finally {
    await h3.close();
  }
});

test('a heap growth bound outside 1-1000 % is refused', () => {
  for (const bad of [0, -5, 1.5, 5000, Number.NaN]) assert.throws(() => boundHeapGrowth(bad), RangeError);
});
