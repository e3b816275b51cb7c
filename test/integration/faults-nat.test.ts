// Faults during a running TCP stream, in the lab (bench/faults: the same
// scenarios `npm run faults` runs at full length): a NAT whose public address
// changes under the sender, the sender moving to another NAT'd site, and the sender's daemon killed with SIGKILL and
// brought back with `up`, and a node's state dir full. Each checks the stream's SHA-256 at both ends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rootSkipReason } from '../helpers/root.js';
import { FaultLab } from '../../bench/faults/lab.js';
import { killDaemon, natRebind, nodeDiskFull, roam } from '../../bench/faults/scenarios.js';

const skip = rootSkipReason('nft', 'ss', 'tc');
/** A shorter stream than the bench's: enough to see the stall and the recovery, inside npm test's budget. */
const SHORT = { rateBps: 4_000_000, recoverMs: 10_000, log: (m: string) => process.stderr.write(`  ${m}\n`) };

test('the NAT’s public address changes mid-stream: direct again or relayed within 5 s, the stream intact', { skip, timeout: 180_000 }, async () => {
  const f = await FaultLab.start(['easy', 'easy']);
  try {
    // 20 s of watching: control marks a node whose map stream died offline 7–10 s after the change
    const row = await natRebind(f, 'address', { ...SHORT, recoverMs: 20_000 });
    // without the daemon's response to a lost path, control marked the node offline and the stream never finished
    assert.ok(row.ok, `${row.fault}: ${row.measured}`);
  } finally {
    await f.close();
  }
});

test('the sender moves to another NAT’d site mid-stream: direct again or relayed within 5 s, the stream intact', { skip, timeout: 180_000 }, async () => {
  const f = await FaultLab.start(['easy', 'easy']);
  try {
    // without the daemon's response to new local addresses, its relay and control connections stayed on the old link
    const row = await roam(f, { ...SHORT, recoverMs: 20_000 });
    assert.ok(row.ok, `${row.fault}: ${row.measured}`);
  } finally {
    await f.close();
  }
});

test('kill -9 of a daemon mid-stream and `up` again: the TCP stream survives, identity and config as before', { skip, timeout: 180_000 }, async () => {
  const f = await FaultLab.start(['easy', 'easy']);
  try {
    const row = await killDaemon(f, 2000, SHORT);
    assert.ok(row.ok, `${row.fault}: ${row.measured}`);
  } finally {
    await f.close();
  }
});

test('a node’s state dir full mid-stream: the tunnel keeps running, the daemon keeps answering', { skip, timeout: 120_000 }, async () => {
  const f = await FaultLab.start(['easy', 'easy'], async (x) => void (await x.smallDisk(x.nodes[0]!, '4m')));
  try {
    const row = await nodeDiskFull(f, 5000, SHORT);
    assert.ok(row.ok, `${row.fault}: ${row.measured}`);
  } finally {
    await f.close();
  }
});
