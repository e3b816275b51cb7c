import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pairGoals, type PairSummary } from '../../bench/goals.js';

const REF: PairSummary = {
  tcp1Mbps: 1500,
  tcp4Mbps: 1600,
  udpMbps: 900,
  machineCpuSecPerGb: 10,
  cpuSecPerGb: 6,
  rttMedianMs: 0.5,
  rttWarmMedianMs: 0.4,
  rttWarmP99Ms: 1,
};

test('goals against the reference: ratios, the warm p50 margin of 0.1 ms and the p99 factor of 2', () => {
  const mc: PairSummary = { ...REF, tcp1Mbps: 1500, tcp4Mbps: 800, machineCpuSecPerGb: 12, rttWarmMedianMs: 0.5, rttWarmP99Ms: 2.5 };
  const g = Object.fromEntries(pairGoals(mc, REF).map((l) => [l.figure, l]));
  assert.equal(g['TCP, 1 stream']!.met, true);
  assert.equal(g['TCP, 4 streams']!.value, 0.5);
  assert.equal(g['TCP, 4 streams']!.met, false);
  assert.equal(g['CPU per GB, whole machine']!.met, false);
  assert.equal(g['CPU per GB, engine processes']!.met, null);
  assert.equal(g['warm RTT p50']!.met, true); // exactly +0.1 ms
  assert.equal(g['warm RTT p99']!.met, false); // 2.5×
  assert.equal(g['fresh RTT p50']!.met, null); // withdrawn: information only
});

test('goals: a figure missing on either side is not judged', () => {
  const g = pairGoals({ ...REF, machineCpuSecPerGb: NaN }, REF);
  assert.equal(g.find((l) => l.figure === 'CPU per GB, whole machine')!.met, null);
});
