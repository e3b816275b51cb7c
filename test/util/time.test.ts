// ICU-free timestamps and ordering (src/util/time.ts) against V8's own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { byCodeUnits, isoTime } from '../../src/util/time.js';

test('isoTime writes what toISOString writes, across the whole 0000–9999 range and beyond it', () => {
  const edges = [
    0,
    -1,
    1,
    Date.UTC(2026, 10, 26, 23, 59, 59, 999),
    Date.UTC(9999, 11, 31, 23, 59, 59, 999),
    Date.UTC(0, 0, 1) - 1,
    Date.UTC(10000, 0, 1),
    -62198755200000,
  ];
  const random = Array.from({ length: 5000 }, () => Math.floor((Math.random() - 0.3) * 3e14));
  for (const ms of [...edges, ...random]) assert.equal(isoTime(ms), new Date(ms).toISOString(), String(ms));
  assert.throws(() => isoTime(NaN), RangeError);
  assert.match(isoTime(), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
});

test('byCodeUnits orders names the same way on every host', () => {
  const names = ['node-b', 'Node-a', 'node-a', 'nas.home', 'nas', 'ä-node', 'z'];
  assert.deepEqual([...names].sort(byCodeUnits), ['Node-a', 'nas', 'nas.home', 'node-a', 'node-b', 'z', 'ä-node']);
  assert.equal(byCodeUnits('x', 'x'), 0);
});
