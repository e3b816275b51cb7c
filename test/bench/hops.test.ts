import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse, requestWakeups } from '../../bench/hops.js';

// two requests in ftrace's text format: ping on CPU 0 queues a packet on the TUN each time;
// the engine (tid 200) is woken on CPU 0 first (the same CPU, 8 µs later), then on CPU 1 (110 µs)
const TRACE = [
  '            ping-100     [000] d..2.  1000.000100: net_dev_queue: dev=tun0 skbaddr=0 len=84',
  '            ping-100     [000] d..3.  1000.000105: sched_wakeup: comm=other pid=300 prio=120 target_cpu=001',
  '            ping-100     [000] d..3.  1000.000108: sched_wakeup: comm=node pid=200 prio=120 target_cpu=000',
  '            ping-100     [000] d..2.  1000.010100: net_dev_queue: dev=tun0 skbaddr=0 len=84',
  '          <idle>-0       [001] dNh2.  1000.010210: sched_wakeup: comm=node pid=200 prio=120 target_cpu=001',
].join('\n');

test("hops: the request wake-up of the engine, on the ping's CPU or another", () => {
  const evs = parse(TRACE);
  assert.equal(evs.length, 5);
  const starts = evs.flatMap((e, i) => (e.name === 'net_dev_queue' ? [i] : []));
  const w = requestWakeups(evs, starts, new Set([200]));
  assert.deepEqual(
    w.map((x) => x.otherCpu),
    [false, true],
  );
  assert.deepEqual(
    w.map((x) => Math.round(x.us)),
    [8, 110],
  );
});
