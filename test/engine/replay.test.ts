import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReplayFilter } from '../../src/engine/device/replay.js';

const LIMIT = Number.MAX_SAFE_INTEGER;
const W = ReplayFilter.windowSize;

test('in order, duplicates and out of order within the window', () => {
  const f = new ReplayFilter();
  for (let i = 0; i < 100; i++) assert.ok(f.validateCounter(i, LIMIT));
  assert.equal(f.validateCounter(50, LIMIT), false);
  assert.ok(f.validateCounter(1000, LIMIT));
  assert.ok(f.validateCounter(500, LIMIT));
  assert.equal(f.validateCounter(500, LIMIT), false);
});

test('window edges: exactly W behind is accepted, W+1 is not', () => {
  const f = new ReplayFilter();
  assert.ok(W >= 2048);
  assert.ok(f.validateCounter(W + 10, LIMIT));
  assert.ok(f.validateCounter(10, LIMIT), 'exactly at the edge');
  assert.equal(f.validateCounter(9, LIMIT), false, 'one past the edge');
});

test('a large jump clears old bits; counters at or past the limit are refused', () => {
  const f = new ReplayFilter();
  assert.ok(f.validateCounter(5, LIMIT));
  assert.ok(f.validateCounter(5 + 10 * W, LIMIT));
  assert.ok(f.validateCounter(5 + 10 * W - 32, LIMIT));
  assert.equal(f.validateCounter(100, 100), false);
});

test('matches a naive reference model over random traffic', () => {
  const f = new ReplayFilter();
  const seen = new Set<number>();
  let max = -1;
  let base = 0;
  for (let i = 0; i < 50_000; i++) {
    base += Math.floor(Math.random() * 40);
    const c = Math.max(0, base - Math.floor(Math.random() * (W + 200)));
    const want = !seen.has(c) && !(max >= 0 && max - c > W);
    assert.equal(f.validateCounter(c, LIMIT), want, `counter ${c} max ${max}`);
    if (want) {
      seen.add(c);
      if (c > max) max = c;
    }
  }
});
