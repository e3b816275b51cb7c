// The relay's framing ceiling the bench prints: the figures docs/performance.md ("Relay") derives by hand.
import assert from 'node:assert/strict';
import test from 'node:test';
import { relayCeiling } from '../../bench/relay-path.js';

test('relay ceiling: 0.869 / 0.790 by key, 0.889 / 0.815 by short id', () => {
  const byKey = relayCeiling(32);
  const byId = relayCeiling(2);
  assert.equal(byKey.high.toFixed(3), '0.869');
  assert.equal(byKey.low.toFixed(3), '0.790');
  assert.equal(byId.high.toFixed(3), '0.889');
  assert.equal(byId.low.toFixed(3), '0.815');
});
