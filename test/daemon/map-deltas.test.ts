// Deltas on the map stream, read by the daemon's own ControlClient over real
// HTTPS on loopback from a control server that writes hostile or broken lines:
// a good delta gives the whole map it describes; a delta whose base is not
// the state held, that patches a peer the node does not hold, or that the
// parser refuses ends the stream after one line (the node's reconnect brings a
// whole map) and never reaches the node's map; a removal of a peer the node
// does not hold changes nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MapDelta, MapLine, NetworkMap, NodeView } from '../../src/netmap/types.js';
import { ControlClient } from '../../src/daemon/control-client.js';
import { fakeControl } from './fake-control.js';
import { generatePrivateKey } from '../../src/crypto/x25519.js';
import { testKey, testNodeView } from './node-view.js';

const SELF = testNodeView(1);

const map = (peers: NodeView[]): NetworkMap => ({
  self: SELF,
  peers,
  ipv4Prefix: '100.64.0.0/10',
  ipv6Prefix: 'fd7a:115c:a1e0::/48',
  relays: [],
});

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const line = (o: unknown): string => `${JSON.stringify(o)}\n`;

for (const bad of [
  { what: 'a gap in the state numbers', delta: { seq: 9, base: 7, removed: [2] }, why: 'delta 9 applies to state 7, but this node holds state 5' },
  { what: 'a patch of a peer it does not hold', delta: { seq: 6, base: 5, patches: [{ id: 3, set: { online: false } }] }, why: 'patches peer 3' },
  {
    what: 'a patch the parser refuses',
    delta: { seq: 6, base: 5, patches: [{ id: 2, set: { endpoints: ['evil\n'] } }] },
    why: 'delta.patches[0].set.endpoints[0]',
  },
  {
    what: 'a patch of a field a peer does not have',
    delta: { seq: 6, base: 5, patches: [{ id: 2, set: { advertised: {} } }] },
    why: 'not a field a peer patch may set',
  },
]) {
  test(`a delta with ${bad.what} ends the stream after one line, and the node keeps its map`, async () => {
    const ctl = await fakeControl();
    try {
      const client = new ControlClient(ctl.url, ctl.certPem, generatePrivateKey());
      const lines: MapLine[] = [];
      const refused: string[] = [];
      const opened = ctl.nextStream();
      const stream = await client.openMap({ endpoints: [], discoKey: testKey() }, (l) => lines.push(l), 30_000, { onRefused: (m) => refused.push(m) });
      const res = await opened;
      const peer = testNodeView(2);
      res.write(line({ type: 'map', seq: 5, map: map([peer]) }));
      res.write(line({ type: 'delta', delta: bad.delta }));
      const end = await stream.done;
      assert.match(end.error?.message ?? '', /reconnecting for a whole map/);
      assert.equal(refused.length, 1, refused.join('\n'));
      assert.match(refused[0]!, /^map delta from control refused: .*; asking for a whole map$/);
      assert.ok(refused[0]!.includes(bad.why), refused[0]);
      // only the whole map reached the node
      assert.equal(lines.length, 1);
      assert.deepEqual((lines[0] as { map: NetworkMap }).map.peers, [peer]);
    } finally {
      await ctl.close();
    }
  });
}

test('deltas give the map they describe: peers added, patched (fields set and removed) and removed, sections replaced', async () => {
  const ctl = await fakeControl();
  try {
    const client = new ControlClient(ctl.url, ctl.certPem, generatePrivateKey());
    const maps: NetworkMap[] = [];
    const refused: string[] = [];
    const opened = ctl.nextStream();
    const stream = await client.openMap({ endpoints: [], discoKey: testKey() }, (l) => l.type === 'map' && maps.push(l.map), 30_000, {
      onRefused: (m) => refused.push(m),
    });
    const res = await opened;
    const p2 = testNodeView(2, { tags: ['tag:server'] });
    const p3 = testNodeView(3);
    const p4 = testNodeView(4);
    res.write(line({ type: 'map', seq: 10, map: map([p2, p3]) }));
    const filter = [{ srcIps: ['100.64.0.4/32'], dstPorts: [{ ip: '100.64.0.1/32', first: 22, last: 22 }], protocols: [] }];
    res.write(
      line({
        type: 'delta',
        delta: {
          seq: 12,
          base: 10,
          peers: [p4],
          patches: [{ id: 2, set: { endpoints: ['[FD7A::9]:7'], online: false, name: 'renamed' }, unset: ['tags'] }],
          removed: [3, 77],
          relays: [{ code: 'r1', url: 'https://relay.example', stunPort: 3478 }],
          packetFilter: filter,
        },
      }),
    );
    await until('the map after the delta', () => maps.length === 2);
    const { tags: _, ...untagged } = p2;
    assert.deepEqual(maps[1], {
      ...map([{ ...untagged, endpoints: ['[fd7a::9]:7'], online: false, name: 'renamed' }, p4]),
      relays: [{ code: 'r1', url: 'https://relay.example', stunPort: 3478 }],
      packetFilter: filter,
    });
    // the filter removed again: the map carries none
    res.write(line({ type: 'delta', delta: { seq: 13, base: 12, packetFilter: null } }));
    await until('the map after the second delta', () => maps.length === 3);
    assert.equal(maps[2]!.packetFilter, undefined);
    assert.deepEqual(refused, []);
    stream.close();
  } finally {
    await ctl.close();
  }
});

test('a reader of the copy gets each delta with it, already applied, and no delta with a whole map', async () => {
  const ctl = await fakeControl();
  try {
    const client = new ControlClient(ctl.url, ctl.certPem, generatePrivateKey());
    const got: { peers: number; delta: MapDelta | undefined }[] = [];
    const opened = ctl.nextStream();
    const stream = await client.openMap({ endpoints: [], discoKey: testKey() }, () => {}, 30_000, {
      onState: (state, _bytes, delta) => got.push({ peers: state.peerCount, delta }),
    });
    const res = await opened;
    res.write(line({ type: 'map', seq: 10, map: map([testNodeView(2)]) }));
    const delta = { seq: 11, base: 10, peers: [testNodeView(3)], patches: [{ id: 2, set: { online: false } }] };
    res.write(line({ type: 'delta', delta }));
    await until('the delta', () => got.length === 2);
    assert.equal(got[0]!.delta, undefined);
    assert.equal(got[0]!.peers, 1);
    assert.equal(got[1]!.peers, 2, 'applied to the copy before the reader gets it');
    assert.deepEqual([got[1]!.delta?.seq, got[1]!.delta?.peers?.map((p) => p.id), got[1]!.delta?.patches], [11, [3], [{ id: 2, set: { online: false } }]]);
    stream.close();
  } finally {
    await ctl.close();
  }
});
