// A hard NAT's router bounced under traffic, in the lab (the soak's NAT
// rebind of node3-hard, with its flow to node4-public): the router's
// masquerade forgets its mappings and picks new random ports, so the public
// node's direct path to the old port dies while the hard side's own packets
// arrive from a new one. ICMP through the tunnel every 100 ms both ways; no
// bounce may cost more than the promised 5 s of replies on either flow, and the
// median bounce at most MEDIAN_GAP_MS.
// KEEP_LAB_LOGS=DIR keeps the lab's logs there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rootSkipReason } from '../helpers/root.js';
import { FaultLab, must, sleep } from '../../bench/faults/lab.js';

const skip = rootSkipReason('nft', 'ping');
/**
 * What the median bounce may cost: the peer's next heartbeat from its new port (at most 1.5 s) or 1 s of data without
 * a reply, then a ping unanswered for 500 ms. Without the dead-path handling the public side waited out its 3.5 s
 * trust window (3.48 / 0.65 / 3.14 s here, 2.4–3.5 s in the soak). One bounce in several takes up to ~3 s on a
 * 2-core machine at load 3–4 (seen with and without the latest path changes), so the median is asserted, and every
 * bounce against the promise.
 */
const MEDIAN_GAP_MS = 2500;
/** The promise for a NAT that rebinds: traffic again within 5 s. */
const MAX_GAP_MS = 5000;
const BOUNCES = 3;
/** after each bounce: long enough for the trust window to run out, so a path that lapsed instead is seen */
const WATCH_MS = 8000;

test('a hard NAT’s router bounced three times under traffic: the median bounce costs at most 2.5 s of replies both ways, none over 5 s', {
  skip,
  timeout: 180_000,
}, async () => {
  const f = await FaultLab.start(['hard', 'public']);
  const log = (m: string): void => void process.stderr.write(`  ${m}\n`);
  const pingers = [];
  try {
    const [hard, pub] = f.nodes as [(typeof f.nodes)[0], (typeof f.nodes)[0]];
    const flows = await f.directIcmpBothWays(hard, pub);
    pingers.push(...flows.map((x) => x.p));
    await sleep(3000);
    const worst: number[] = [];
    for (let i = 0; i < BOUNCES; i++) {
      const before = await f.pathTo(pub, hard);
      const t0 = Date.now();
      await f.flushConntrack(hard);
      await sleep(WATCH_MS);
      const gaps = flows.map((x) => x.p.longestGapMs(t0, Date.now() - 500));
      worst.push(Math.max(...gaps));
      const load = (await must('cat', ['/proc/loadavg'])).trim();
      const path = `${before} → ${await f.pathTo(pub, hard)}`;
      log(`bounce ${i + 1}: public→hard path ${path}; longest gaps ${flows.map((x, k) => `${x.name} ${gaps[k]} ms`).join(', ')}; load ${load}`);
    }
    for (const [i, w] of worst.entries()) assert.ok(w <= MAX_GAP_MS, `bounce ${i + 1} cost ${w} ms of replies (at most ${MAX_GAP_MS})`);
    const median = [...worst].sort((a, b) => a - b)[Math.floor(worst.length / 2)]!;
    assert.ok(median <= MEDIAN_GAP_MS, `the median bounce cost ${median} ms of replies (at most ${MEDIAN_GAP_MS}): ${worst.join(', ')} ms`);
    const direct = [await f.pathTo(hard, pub), await f.pathTo(pub, hard)];
    assert.ok(
      direct.every((x) => x.startsWith('direct')),
      `direct again both ways: ${direct.join(', ')}`,
    );
  } finally {
    for (const p of pingers) p.stop();
    if (process.env.KEEP_LAB_LOGS) await must('cp', ['-r', f.l.s.dir, process.env.KEEP_LAB_LOGS]).catch(() => '');
    await f.close();
  }
});
