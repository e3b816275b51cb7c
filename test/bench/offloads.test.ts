import { test } from 'node:test';
import assert from 'node:assert/strict';
import { interfaceFeatures, parseFeatures } from '../../bench/offloads.js';

/** names as ETHTOOL_GSTRINGS returns them: 32 NUL-padded bytes each */
function names(...ns: string[]): Uint8Array {
  const b = new Uint8Array(ns.length * 32);
  ns.forEach((n, i) => b.set(Buffer.from(n, 'latin1'), i * 32));
  return b;
}

/** ETHTOOL_GFEATURES blocks: available, requested, active, never_changed per 32 features */
function blocks(...active: number[]): Uint8Array {
  return new Uint8Array(new Uint32Array(active.flatMap((a) => [0xffffffff, 0, a, 0])).buffer);
}

test('ethtool features: the active bit of feature i is bit i % 32 of block i / 32', () => {
  const list = Array.from({ length: 34 }, (_, i) => `f${i}`);
  list[1] = 'tx-tcp-segmentation';
  list[33] = 'rx-gro';
  const m = parseFeatures(names(...list), 34, blocks(1 << 1, 1 << 1));
  assert.equal(m.get('tx-tcp-segmentation'), true);
  assert.equal(m.get('f0'), false);
  assert.equal(m.get('rx-gro'), true);
  assert.equal(m.get('f32'), false);
  assert.equal(m.get('tcp-segmentation-offload'), true); // as ethtool -k derives it
});

test('ethtool features: implausible counts and short replies are refused', () => {
  assert.throws(() => parseFeatures(names('a'), 5000, blocks(0)), /not a plausible count/);
  assert.throws(() => parseFeatures(names('a'), 2, blocks(0)), /shorter/);
});

test('ethtool features of the loopback device, read with the ioctl', { skip: process.platform !== 'linux' }, () => {
  const m = interfaceFeatures('lo');
  assert.ok(m.size > 20, `only ${m.size} features`);
  assert.equal(typeof m.get('rx-gro'), 'boolean');
  assert.equal(m.get('tx-tcp-segmentation'), true); // the loopback device has TSO on
  assert.throws(() => interfaceFeatures('nosuchif0'), /ethtool ioctl on nosuchif0/);
});
