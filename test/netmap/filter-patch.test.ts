// Packet-filter patches: the patch control computes, applied by the node to
// the filter it holds, gives exactly control's filter (sources in the same
// order) over random changes; a patch that does not fit the held filter, or
// that the parser refuses, changes nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyFilterPatch, filterPatchOf, FilterPatchError, sourceEdit } from '../../src/netmap/filter-patch.js';
import { NetmapState, MapDeltaError } from '../../src/netmap/delta.js';
import { MapParseError, MAX_FILTER_SOURCES, parseMapDelta, parseNetworkMap } from '../../src/netmap/parse.js';
import type { FilterRule } from '../../src/netmap/types.js';
import { prng } from '../helpers/control-seed.js';

const MESH = { ipv4: '100.64.0.0/10', ipv6: 'fd7a:115c:a1e0::/48' };
const addr = (i: number): string => `100.64.${i >> 8}.${i & 255}/32`;
const port = (p: number) => ({ ip: '100.64.0.1/32', first: p, last: p });

test('random filter changes: the patch applied to the old filter gives the new one, sources in order', () => {
  const rnd = prng(7);
  let filter: FilterRule[] = [{ srcIps: [addr(1)], dstPorts: [port(22)], protocols: [6] }];
  let patched = 0;
  for (let step = 0; step < 2000; step++) {
    const next = filter.map((r) => ({ ...r, srcIps: [...r.srcIps] }));
    const r = rnd();
    if (r < 0.1 && next.length < 6) next.push({ srcIps: [addr(Math.floor(rnd() * 4000))], dstPorts: [port(80 + step)], protocols: [6, 17] });
    else if (r < 0.15 && next.length > 1) next.splice(Math.floor(rnd() * next.length), 1);
    else if (r < 0.2) next[0] = { ...next[0]!, dstPorts: [port(1000 + step)] };
    else {
      const rule = next[Math.floor(rnd() * next.length)]!;
      // sources joining at any position (sorted or not), leaving from anywhere
      for (let k = Math.floor(rnd() * 4); k > 0; k--) {
        const a = addr(Math.floor(rnd() * 4000));
        if (!rule.srcIps.includes(a)) rule.srcIps.splice(Math.floor(rnd() * (rule.srcIps.length + 1)), 0, a);
      }
      if (rule.srcIps.length > 2 && rnd() < 0.5) rule.srcIps.splice(Math.floor(rnd() * rule.srcIps.length), 1);
    }
    const p = filterPatchOf(filter, next);
    if (p === null) {
      assert.deepEqual(next, filter);
      continue;
    }
    if (p.edits.some((e) => !e.rule)) patched++;
    // through the wire and the node's parser, as a delta carries it
    const wire = parseMapDelta(JSON.parse(JSON.stringify({ seq: 2, base: 1, filterPatch: p })), MESH).filterPatch!;
    const before = JSON.stringify(filter);
    const out = applyFilterPatch(filter, wire, MAX_FILTER_SOURCES);
    assert.equal(JSON.stringify(filter), before, 'the held filter is not changed in place');
    assert.deepEqual(out, next, `step ${step}`);
    filter = out;
  }
  assert.ok(patched > 500, `${patched} source patches`);
});

test('a one-source change to a 2,500-source rule is a patch of that source, not the rule', () => {
  const srcs = Array.from({ length: 2500 }, (_, i) => addr(i + 2));
  const a: FilterRule[] = [{ srcIps: srcs, dstPorts: [port(22)], protocols: [6] }];
  const b: FilterRule[] = [{ srcIps: [...srcs.slice(0, 1000), addr(9000), ...srcs.slice(1001)], dstPorts: [port(22)], protocols: [6] }];
  const p = filterPatchOf(a, b)!;
  assert.deepEqual(p, { rules: 1, edits: [{ i: 0, remove: [addr(1002)], add: [[1000, addr(9000)]] }] });
  assert.ok(JSON.stringify(p).length < 100);
  // sources kept in another order cannot be said as a patch: the rule goes whole
  assert.equal(sourceEdit(['a', 'b', 'c'], ['b', 'a', 'c']), null);
});

test('a patch that does not fit the held filter is refused and the map held stays as it was', () => {
  const state = new NetmapState();
  const self = { id: 1, name: 'n1', addresses: ['100.64.0.1', 'fd7a:115c:a1e0::1'] };
  const map = parseNetworkMap({
    self: {
      ...self,
      nodeKey: Buffer.alloc(32, 1).toString('base64'),
      discoKey: Buffer.alloc(32, 2).toString('base64'),
      allowedIps: ['100.64.0.1/32', 'fd7a:115c:a1e0::1/128'],
      endpoints: [],
      homeRelay: null,
      online: true,
      lastSeen: null,
      os: 'linux',
      version: 't',
      keyExpiry: null,
      ephemeral: false,
    },
    peers: [],
    ipv4Prefix: MESH.ipv4,
    ipv6Prefix: MESH.ipv6,
    relays: [],
    packetFilter: [{ srcIps: [addr(2), addr(3)], dstPorts: [port(22)], protocols: [6] }],
  });
  state.setMap(map, 1);
  const held = JSON.stringify(state.toMap());
  const bad = [
    { rules: 1, edits: [{ i: 0, remove: [addr(9)] }] },
    { rules: 2, edits: [{ i: 1, add: [[0, addr(9)]] }] },
    { rules: 1, edits: [{ i: 0, add: [[5, addr(9)]] }] },
    { rules: 1, edits: [{ i: 0, remove: [addr(2), addr(3)] }] },
    { rules: 1, edits: [{ i: 0, add: [[0, addr(2)]] }] },
    { rules: 3, edits: [] },
  ];
  for (const fp of bad) {
    const d = parseMapDelta({ seq: 2, base: 1, filterPatch: fp }, MESH);
    assert.throws(() => state.apply(d), MapDeltaError, JSON.stringify(fp));
    assert.equal(JSON.stringify(state.toMap()), held);
  }
  assert.throws(() => applyFilterPatch([], { rules: 1, edits: [{ i: 0, remove: ['x'] }] }, 10), FilterPatchError);
  // the parser refuses what no patch may say
  const refused = [
    { rules: -1, edits: [] },
    { rules: 1, edits: [{ i: 0 }] },
    {
      rules: 2,
      edits: [
        { i: 1, add: [[0, addr(9)]] },
        { i: 0, add: [[0, addr(9)]] },
      ],
    },
    {
      rules: 1,
      edits: [
        {
          i: 0,
          add: [
            [1, addr(9)],
            [0, addr(8)],
          ],
        },
      ],
    },
    { rules: 1, edits: [{ i: 0, remove: ['100.64.0.1/24'] }] },
    { rules: 1, edits: [{ i: 0, rule: { srcIps: [addr(1)], dstPorts: [port(1)], protocols: [] }, remove: [addr(2)] }] },
  ];
  for (const fp of refused) assert.throws(() => parseMapDelta({ seq: 2, base: 1, filterPatch: fp }, MESH), MapParseError, JSON.stringify(fp));
  assert.throws(() => parseMapDelta({ seq: 2, base: 1, filterPatch: { rules: 0, edits: [] }, packetFilter: [] }, MESH), MapParseError);
  // and one that fits applies
  state.apply(parseMapDelta({ seq: 2, base: 1, filterPatch: { rules: 1, edits: [{ i: 0, remove: [addr(2)], add: [[1, addr(4)]] }] } }, MESH));
  assert.deepEqual(state.toMap().packetFilter![0]!.srcIps, [addr(3), addr(4)]);
});
