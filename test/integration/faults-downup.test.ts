// A peer's planned `down` and `up` under traffic, in the lab (the soak's
// down/up of node4-public, with node3-hard's flow to it): nodes behind a hard
// NAT and on a public address, ICMP through the tunnel every 100 ms both ways,
// the public node taken down for 1 s and brought up again, then the hard one,
// then the public one again. After each `up` returns, both flows must answer
// again within MAX_GAP_MS: the first handshake after `up` may go a way that
// cannot reach the peer yet (a relay it is not connected to, a socket not yet
// open), and is resent as soon as a way opens rather than after REKEY_TIMEOUT.
// KEEP_LAB_LOGS=DIR keeps the lab's logs there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rootSkipReason } from '../helpers/root.js';
import { FaultLab, must, sleep, within } from '../../bench/faults/lab.js';
import { LocalClient } from '../../src/localapi/client.js';
import { LOCALAPI, type Status } from '../../src/localapi/types.js';

const skip = rootSkipReason('nft', 'ping');

/** `counters.engine.handshakes.resentOnPath` of a node's status, or '-' when it has none. */
function resentOnPath(st: Status): string {
  const engine = st.counters?.engine as { handshakes?: { resentOnPath?: number } } | undefined;
  return String(engine?.handshakes?.resentOnPath ?? '-');
}
/** How long a flow may go without replies once `up` returned: well under REKEY_TIMEOUT (5 s), with room for a loaded machine. */
const MAX_GAP_MS = 2500;
/** A node stays down this long, as in the soak. */
const DOWN_HOLD_MS = 1000;
/** Watched after each `up`: past REKEY_TIMEOUT, so a handshake left to its retry timer shows as a gap over 5 s. */
const WATCH_MS = 5500;

test('a peer’s down and up under traffic, hard NAT on one side: both flows answer within 2.5 s of up', { skip, timeout: 120_000 }, async () => {
  const f = await FaultLab.start(['hard', 'public']);
  const log = (m: string): void => void process.stderr.write(`  ${m}\n`);
  const pingers = [];
  try {
    const [hard, pub] = f.nodes as [(typeof f.nodes)[0], (typeof f.nodes)[0]];
    const flows = await f.directIcmpBothWays(hard, pub);
    pingers.push(...flows.map((x) => x.p));
    assert.notEqual(await within(async () => flows.every((x) => x.p.replies.length > 0), 10_000, 100), null, 'both flows answer');
    const worst: number[] = [];
    for (const [i, n] of [pub, hard, pub].entries()) {
      await new LocalClient(f.l.socket(n)).post(LOCALAPI.down);
      await sleep(DOWN_HOLD_MS);
      const r = await f.l.up(n);
      assert.equal(r.code, 0, `${n.name}: up: ${r.err.trim()}`);
      const upMs = Date.now();
      await sleep(WATCH_MS);
      const gaps = flows.map((x) => x.p.longestGapMs(upMs, Date.now() - 500));
      worst.push(Math.max(...gaps));
      const load = (await must('cat', ['/proc/loadavg'])).trim();
      // initiations resent because a way opened (they count from each node's last `up`)
      const resent = await Promise.all([hard, pub].map(async (x) => `${x.name} ${resentOnPath(await f.status(x))}`));
      log(
        `down/up ${i + 1} (${n.name}): longest gaps after up ${flows.map((x, k) => `${x.name} ${gaps[k]} ms`).join(', ')}; resent ${resent.join(', ')}; load ${load}`,
      );
    }
    for (const [i, w] of worst.entries()) assert.ok(w <= MAX_GAP_MS, `down/up ${i + 1} cost ${w} ms of replies after up (at most ${MAX_GAP_MS})`);
  } finally {
    for (const p of pingers) p.stop();
    if (process.env.KEEP_LAB_LOGS) await must('cp', ['-r', f.l.s.dir, process.env.KEEP_LAB_LOGS]).catch(() => '');
    await f.close();
  }
});
