// The peer sets the policy engine hands out: a set made by adding or removing
// one id holds exactly what a copied Set would, never changes the set it came
// from, and costs the ids it edits, not a copy of every peer; and a node that
// joins or leaves a network where every node sees every other copies a few ids
// per peer, not each peer's whole set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { changedPeers, PeerSet, PEER_SET_MIN_EDITS } from '../../src/policy/peer-set.js';
import { PolicyEngine } from '../../src/policy/engine.js';
import { parsePolicy } from '../../src/policy/parse.js';
import type { PolicyNode } from '../../src/policy/types.js';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { prng } from '../helpers/control-seed.js';

// a full collection, to compare what stays live (the switch node --expose-gc turns on, for a context of our own)
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const MESH = ['100.64.0.0/10', 'fd7a:115c:a1e0::/48'];

const node = (id: number): PolicyNode => ({
  id,
  user: `u${id % 50}`,
  tags: [],
  addresses: [`100.64.${id >> 8}.${id & 255}`, `fd7a:115c:a1e0::${id.toString(16)}`],
  routes: [],
  exitNode: false,
  deviceAddresses: [],
});

test('a PeerSet made by with/without holds what a copied Set would, and the one it came from is unchanged (seeded)', () => {
  for (const seed of [1, 2, 3]) {
    const r = prng(seed);
    let model = new Set<number>();
    for (let i = 0; i < 100; i++) model.add(Math.floor(r() * 200));
    let set = PeerSet.of(new Set(model));
    const kept: [PeerSet, number[]][] = [];
    for (let step = 0; step < 400; step++) {
      const id = Math.floor(r() * 200);
      const next = new Set(model);
      if (r() < 0.5) {
        next.add(id);
        set = set.with(id);
      } else {
        next.delete(id);
        set = set.without(id);
      }
      model = next;
      assert.equal(set.size, model.size, `seed ${seed} step ${step}: size`);
      assert.deepEqual(
        [...set].sort((a, b) => a - b),
        [...model].sort((a, b) => a - b),
        `seed ${seed} step ${step}: ids`,
      );
      for (let x = 0; x < 200; x += 7) assert.equal(set.has(x), model.has(x), `seed ${seed} step ${step}: has(${x})`);
      if (step % 40 === 0) kept.push([set, [...model].sort((a, b) => a - b)]);
    }
    const sorted = (xs: Iterable<number>): number[] => [...xs].sort((a, b) => a - b);
    for (const [s, ids] of kept) {
      assert.deepEqual(sorted(s), ids, `seed ${seed}: an earlier set changed`);
      // the ids gained or lost since, whether the two sets share storage or not
      const diff = [...ids.filter((x) => !model.has(x)), ...[...model].filter((x) => !ids.includes(x))];
      assert.deepEqual(sorted(changedPeers(s, set)), sorted(diff), `seed ${seed}: changed peers`);
      assert.deepEqual(sorted(changedPeers(new Set(ids), set)), sorted(diff), `seed ${seed}: changed peers against a plain Set`);
    }
  }
});

test('adding one id to a large PeerSet copies only the edits until they reach the square root of its size', () => {
  const big = PeerSet.of(new Set(Array.from({ length: 10_000 }, (_, i) => i)));
  const c0 = PeerSet.copiedIds;
  let s = big;
  for (let i = 0; i < 50; i++) s = s.with(20_000 + i);
  // 50 edits under the bound (100 = sqrt(10,000)): each copies the edits so far, never the 10,000
  assert.ok(PeerSet.copiedIds - c0 <= (50 * 51) / 2, `copied ${PeerSet.copiedIds - c0} ids`);
  assert.equal(s.size, 10_050);
  assert.equal(big.size, 10_000);
  assert.ok(!big.has(20_000) && s.has(20_000));
  // past the bound the set is made whole again once, then edits start from nothing
  const small = PeerSet.of(new Set([1, 2, 3]));
  let t = small;
  for (let i = 0; i <= PEER_SET_MIN_EDITS; i++) t = t.with(100 + i);
  assert.equal(t.size, 3 + PEER_SET_MIN_EDITS + 1);
  assert.deepEqual(
    [...t].sort((a, b) => a - b),
    [1, 2, 3, ...Array.from({ length: PEER_SET_MIN_EDITS + 1 }, (_, i) => 100 + i)],
  );
});

test('a join and a leave where every node sees every other copy a few ids per peer, not every peer set', () => {
  const nodes = Array.from({ length: 800 }, (_, i) => node(i + 1));
  const e = new PolicyEngine(parsePolicy('{"acls":[{"action":"accept","src":["*"],"dst":["*:*"]}]}'), MESH, nodes);
  const held = e.peersOf(5)!;
  const c0 = PeerSet.copiedIds;
  // every node's peer set before the join and after it, kept live, as control keeps them for its streams
  const before = nodes.map((n) => e.peersOf(n.id));
  gc();
  const heap0 = process.memoryUsage().heapUsed;
  e.sync([...nodes, node(801)]);
  const after = nodes.map((n) => e.peersOf(n.id));
  gc();
  // a copy of each of 800 sets of 800 ids is ~16 MB; sets that share their storage are a few hundred KB
  const grown = process.memoryUsage().heapUsed - heap0;
  assert.ok(grown < 3 * 1024 * 1024, `the join left ${(grown / 1048576).toFixed(1)} MB more live heap`);
  assert.equal(before.length + after.length, 1600);
  assert.equal(e.lastRecomputed, 801);
  assert.ok(e.peersOf(5)!.has(801) && !held.has(801), 'the peer sees the new node; the set held before is unchanged');
  e.sync(nodes.filter((n) => n.id !== 400));
  assert.ok(!e.peersOf(5)!.has(400) && held.has(400));
  assert.equal(e.peersOf(5)!.size, [...e.peersOf(5)!].length);
  // a copy of each peer's set per change would be ~2 x 800 x 800 ids
  const copied = PeerSet.copiedIds - c0;
  assert.ok(copied <= 4 * 800, `copied ${copied} ids for two changes reaching 800 peers each`);
});
