// The soak's disturbances in the order that cost 20-80 s of traffic, in a
// small lab: a public node, one behind an easy NAT and one behind a hard NAT,
// echoes every 100 ms from the first to the second and from the second to the
// third. The policy switches, node 2 goes down and up, its router forgets
// every mapping (WAN link bounced), the policy switches, node 2's home relay
// restarts. From the router's bounce on, no flow may go more than 5 s without
// a reply: node 2's map stream and relay connections, which the router no
// longer maps, are replaced within seconds (control would mark node 2 offline
// and its peers drop it; its relayed traffic would wait for TCP's retries),
// and a probe of a live relay connection does not drop it.
// KEEP_LAB_LOGS=DIR keeps the lab's logs and mid-run status there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rootSkipReason } from '../helpers/root.js';
import { BIN, FaultLab, must, sleep, within } from '../../bench/faults/lab.js';

const skip = rootSkipReason('nft', 'ss', 'ping');
/** The promise the soak checks: no flow loses traffic for longer than this. */
const MAX_GAP_MS = 5000;
/** How long the flows are watched after the restart: a stalled relayed path or a dropped peer lasted 15 s or more. */
const WATCH_MS = 20_000;
const POLICIES = [
  '{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}\n',
  '{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}, {"action": "accept", "src": ["*"], "dst": ["*:22"]}]}\n',
];

test('a NAT that forgot its mappings, then a relay restart: no flow goes more than 5 s without replies', { skip, timeout: 240_000 }, async () => {
  const f = await FaultLab.start(['public', 'easy', 'hard']);
  const log = (m: string): void => void process.stderr.write(`  ${m}\n`);
  const flows = [];
  try {
    const [n1, n2, n3] = f.nodes as [(typeof f.nodes)[0], (typeof f.nodes)[0], (typeof f.nodes)[0]];
    let turn = 0;
    const policy = async (): Promise<void> => {
      const file = join(f.l.s.dir, 'policy.json');
      writeFileSync(file, POLICIES[turn++ % POLICIES.length]!);
      await must(process.execPath, [BIN, 'control', 'policy', 'set', file, '--state-dir', join(f.l.s.dir, 'control')]);
    };
    for (const [a, b] of [
      [n1, n2],
      [n2, n3],
    ] as const)
      assert.notEqual(await within(async () => (await f.pathTo(a, b)) !== 'none' && (await f.pathTo(b, a)) !== 'none', 60_000, 250), null);
    flows.push({ name: '1→2', p: await f.icmp(n1, n2) });
    flows.push({ name: '2→3', p: await f.icmp(n2, n3) });
    await sleep(3000);
    log(`paths: 2→1 ${await f.pathTo(n2, n1)}, 1→2 ${await f.pathTo(n1, n2)}, 2→3 ${await f.pathTo(n2, n3)}`);
    const home = (await f.status(n2)).homeRegion ?? 'east';
    await policy();
    await sleep(5000);
    await policy();
    await sleep(5000);
    const down = await f.l.meshctl(n2, ['down']);
    assert.equal(down.code, 0, down.err);
    await sleep(1000);
    const up = await f.l.up(n2);
    assert.equal(up.code, 0, up.err);
    await sleep(5000);
    // from here on no node is down on purpose: every gap counts
    const at = Date.now();
    await f.flushConntrack(n2);
    await sleep(5000);
    await policy();
    await sleep(5000);
    await f.l.restartRelay(home);
    log(`relay ${home} restarted`);
    await sleep(8000);
    if (process.env.KEEP_LAB_LOGS)
      for (const n of [n1, n2, n3]) writeFileSync(join(f.l.s.dir, `${n.name}-status.json`), JSON.stringify(await f.status(n), null, 1));
    await sleep(WATCH_MS - 8000);
    for (const fl of flows) {
      let last = 0;
      for (const t of fl.p.replies) {
        if (last && t - last > 1000) log(`${fl.name}: no reply from ${new Date(last).toISOString()} for ${t - last} ms`);
        last = t;
      }
    }
    const until = Date.now();
    log(`paths: 2→1 ${await f.pathTo(n2, n1)}, 1→2 ${await f.pathTo(n1, n2)}, 2→3 ${await f.pathTo(n2, n3)}`);
    const gaps = flows.map((fl) => ({ name: fl.name, gapMs: fl.p.longestGapMs(at, until) }));
    log(`longest gaps: ${gaps.map((g) => `${g.name} ${g.gapMs} ms`).join(', ')}`);
    for (const g of gaps) assert.ok(g.gapMs <= MAX_GAP_MS, `flow ${g.name} went ${g.gapMs} ms without replies (at most ${MAX_GAP_MS})`);
  } finally {
    for (const fl of flows) fl.p.stop();
    if (process.env.KEEP_LAB_LOGS) await must('cp', ['-r', f.l.s.dir, process.env.KEEP_LAB_LOGS]).catch(() => '');
    await f.close();
  }
});
