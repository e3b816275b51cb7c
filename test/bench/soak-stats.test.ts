// The soak's arithmetic: ping lines parsed into sequence and send time (wrapping
// past 65,535), lost-traffic windows with planned downtime left out, quantiles,
// counters that reset, and growth as a slope per hour.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { counterIncrease, covered, lostWindows, PingParser, quantile, slopePerHour, type Reply } from '../../bench/soak-stats.js';

test('ping -D lines: send time is the stamp less the round trip; other lines and duplicates are ignored; the sequence unwraps', () => {
  const p = new PingParser();
  p.push('PING 100.64.0.3 (100.64.0.3) 56(84) bytes of data.');
  p.push('[1700000000.500000] 64 bytes from 100.64.0.3: icmp_seq=65530 ttl=64 time=0.500 ms');
  p.push('[1700000000.700000] 64 bytes from 100.64.0.3: icmp_seq=65530 ttl=64 time=200 ms (DUP!)');
  p.push('[1700000001.000000] no answer yet for icmp_seq=2');
  p.push('[1700000002.000000] 64 bytes from 100.64.0.3: icmp_seq=65535 ttl=64 time=1.000 ms');
  p.push('[1700000002.200000] 64 bytes from 100.64.0.3: icmp_seq=0 ttl=64 time=1.000 ms');
  // a late reply from before the wrap stays before it
  p.push('[1700000002.300000] 64 bytes from 100.64.0.3: icmp_seq=65534 ttl=64 time=400 ms');
  assert.deepEqual(p.replies, [
    { seq: 65530, sentMs: 1_700_000_000_499.5 },
    { seq: 65535, sentMs: 1_700_000_001_999 },
    { seq: 65536, sentMs: 1_700_000_002_199 },
    { seq: 65534, sentMs: 1_700_000_001_900 },
  ]);
});

test('covered: overlapping spans count once', () => {
  assert.equal(covered(0, 100, [[10, 20]]), 10);
  assert.equal(
    covered(0, 100, [
      [10, 30],
      [20, 40],
      [90, 200],
    ]),
    40,
  );
  assert.equal(
    covered(0, 100, [
      [-50, -10],
      [150, 200],
    ]),
    0,
  );
});

test('lost windows: a run of missing echoes is one window of that many intervals, less planned downtime', () => {
  const I = 200;
  const at = (seq: number): Reply => ({ seq, sentMs: 1000 + seq * I });
  // 0..9, then 15..20 (5 lost: 1 s), then 21, then 23 (one lost: 200 ms)
  const replies = [...Array.from({ length: 10 }, (_, i) => at(i)), ...Array.from({ length: 6 }, (_, i) => at(15 + i)), at(21), at(23)];
  assert.deepEqual(
    lostWindows(replies, I).map((w) => w.ms),
    [1000, 200],
  );
  assert.equal(lostWindows(replies, I)[0]!.fromMs, 1000 + 9 * I + I / 2);
  // the node was down on purpose for most of the first window: only what follows `up` counts
  const down: [number, number] = [1000 + 9 * I, 1000 + 13 * I];
  assert.deepEqual(
    lostWindows(replies, I, [down]).map((w) => Math.round(w.ms)),
    [300, 200],
  );
  // echoes lost after the last reply, until sending stopped
  assert.deepEqual(
    lostWindows([at(0), at(1)], I, [], 1000 + 11 * I).map((w) => w.ms),
    [1900],
  );
  assert.deepEqual(lostWindows([at(0), at(1), at(1)], I, [], 1000 + 2 * I), []);
});

test('quantiles by nearest rank; a counter that went down was reset and counts from zero', () => {
  const xs = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(quantile(xs, 0.5), 50);
  assert.equal(quantile(xs, 0.99), 99);
  assert.equal(quantile(xs, 1), 100);
  assert.ok(Number.isNaN(quantile([], 0.5)));
  assert.equal(counterIncrease([5, 7, 7, 2, 4, NaN, 6]), 2 + 2 + 2);
});

test('growth: the least-squares slope per hour', () => {
  const flat = Array.from({ length: 60 }, (_, i) => ({ tMs: i * 60_000, v: 50 + (i % 2 ? 0.5 : -0.5) }));
  assert.ok(Math.abs(slopePerHour(flat)) < 0.1);
  const leak = Array.from({ length: 60 }, (_, i) => ({ tMs: i * 60_000, v: 50 + i * 0.1 }));
  assert.ok(Math.abs(slopePerHour(leak) - 6) < 1e-9);
  assert.ok(Number.isNaN(slopePerHour([{ tMs: 1, v: 1 }])));
});
