// Short versions of two of `npm run faults`'s rows (bench/faults/scenarios.ts), each in its own lab during a paced
// TCP stream: the relays' hosts losing 30 % of their packets for a few seconds under a relayed pair, and the receiving
// peer's daemon stopped (SIGSTOP) for a few seconds and continued. Each checks the stream's SHA-256 at both ends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rootSkipReason } from '../helpers/root.js';
import { FaultLab } from '../../bench/faults/lab.js';
import { relayLoss, stopCont } from '../../bench/faults/scenarios.js';

const skip = rootSkipReason('nft', 'ss');
const log = (m: string): void => void process.stderr.write(`  ${m}\n`);
/** Shorter than the bench's 20 s of loss and 30 s of SIGSTOP: each test stays near 40 s with its lab. */
const FAULT_MS = 5000;

test('the relays’ hosts drop 30 % of packets for 5 s under a relayed stream: it keeps flowing, full rate after, intact', {
  skip,
  timeout: 120_000,
}, async () => {
  const f = await FaultLab.start(['blocked', 'easy']);
  try {
    const row = await relayLoss(f, FAULT_MS, 30, { rateBps: 2_000_000, recoverMs: 10_000, log });
    assert.ok(row.ok, `${row.fault}: ${row.measured}`);
  } finally {
    await f.close();
  }
});

test('the receiving peer’s daemon stopped 5 s (SIGSTOP) and continued: everyone converges, the stream intact', { skip, timeout: 120_000 }, async () => {
  const f = await FaultLab.start(['easy', 'easy']);
  try {
    const row = await stopCont(f, 'peer daemon', FAULT_MS, { rateBps: 2_000_000, recoverMs: 10_000, log });
    assert.ok(row.ok, `${row.fault}: ${row.measured}`);
  } finally {
    await f.close();
  }
});
