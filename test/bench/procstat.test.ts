import { test } from 'node:test';
import assert from 'node:assert/strict';
import { busySecondsBetween, machineCpuTicks, parseProcStatCpu } from '../../bench/procstat.js';

// the head of /proc/stat on a 2-CPU machine: cpu user nice system idle iowait irq softirq steal guest guest_nice
const BEFORE = ['cpu  1000 10 300 5000 40 5 200 7 0 0', 'cpu0 500 5 150 2500 20 2 100 3 0 0', 'intr 12345 0 0'].join('\n');
const AFTER = ['cpu  1400 10 420 5100 90 6 480 57 0 0', 'cpu0 700 5 210 2550 45 3 240 28 0 0', 'intr 99999 0 0'].join('\n');

test('/proc/stat: busy is user + nice + system + irq + softirq of every CPU; idle, iowait and steal are not', () => {
  assert.deepEqual(parseProcStatCpu(BEFORE), { busy: 1000 + 10 + 300 + 5 + 200, total: 1515 + 5000 + 40 + 7 });
  // between the two: user +400, system +120, irq +1, softirq +280 (counted); idle +100, iowait +50, steal +50 (not)
  assert.equal(busySecondsBetween(parseProcStatCpu(BEFORE), parseProcStatCpu(AFTER)), 8.01);
});

test('/proc/stat: a text without the aggregate cpu line, or with too few counts, is refused with a one-line error', () => {
  assert.throws(() => parseProcStatCpu('cpu0 1 2 3 4 5 6 7 8\nintr 1'), /no aggregate cpu line/);
  assert.throws(() => parseProcStatCpu('cpu  1 2 3 4'), /no aggregate cpu line/);
  assert.throws(() => parseProcStatCpu('cpu  1 2 x 4 5 6 7 8'), /no aggregate cpu line/);
});

test('/proc/stat of this machine: busy ticks never fall and stay within the total', () => {
  const a = machineCpuTicks();
  let x = 0;
  for (let i = 0; i < 2e6; i++) x += i;
  const b = machineCpuTicks();
  assert.ok(x > 0);
  assert.ok(a.busy > 0 && a.busy <= a.total);
  assert.ok(b.busy >= a.busy && b.total >= a.total);
});
