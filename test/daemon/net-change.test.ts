// NetChange: one response (relays probed, netcheck, a new map stream) per sign
// that the network changed, at most once per interval.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NetChange } from '../../src/daemon/net-change.js';

test('a suspected network change probes relays, re-runs netcheck and renews the map stream, at most once per interval', () => {
  const calls: string[] = [];
  let now = 1000;
  const nc = new NetChange(
    { probeRelays: () => calls.push('relays'), netcheck: () => calls.push('netcheck'), renewMapStream: () => calls.push('map'), log: () => {} },
    10_000,
    () => now,
  );
  nc.suspect('a direct path stopped answering');
  assert.deepEqual(calls, ['relays', 'netcheck', 'map']);
  now += 9_999;
  nc.suspect('again');
  assert.equal(calls.length, 3, 'inside the interval: nothing');
  now += 1;
  nc.suspect('later');
  assert.equal(calls.length, 6);
  assert.deepEqual(nc.stats, { responses: 2, suppressed: 1 });
});
