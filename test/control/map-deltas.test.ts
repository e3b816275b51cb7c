// The control server's delta streams over real HTTPS: a node that asks for
// deltas gets one whole map, then for another node's endpoint change a delta
// of a few hundred bytes, not a whole map; the node's own ControlClient turns
// it into the map a whole-map stream carries. A node that does not ask gets
// whole maps as before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ControlClient } from '../../src/daemon/control-client.js';
import type { NetworkMap } from '../../src/netmap/types.js';
import { discoKey, harness, latestMap, Node, openStream, registerBody, until } from './helpers.js';

const P = '/meshctl/v1';

test('a delta stream gets its first map whole, then an endpoint change as a small delta that gives the same map as a whole-map stream', async () => {
  const h = await harness();
  const closers: (() => void)[] = [];
  try {
    const key = await h.authKey();
    const [a, b, c] = [new Node(h.server.publicKey!), new Node(h.server.publicKey!), new Node(h.server.publicKey!)];
    for (const [n, name] of [
      [a, 'a'],
      [b, 'b'],
      [c, 'c'],
    ] as const)
      assert.equal((await h.post(`${P}/register`, n.seal('register', registerBody(key, name)))).status, 200);
    const maps: NetworkMap[] = [];
    const refused: string[] = [];
    const client = new ControlClient(h.url, h.server.certPem, a.priv);
    const stream = await client.openMap({ endpoints: [], discoKey: discoKey() }, (l) => l.type === 'map' && maps.push(l.map), 30_000, {
      onRefused: (m) => refused.push(m),
    });
    closers.push(() => stream.close());
    // c reads whole maps (it does not ask for deltas)
    const whole = await openStream(h, c);
    closers.push(() => whole.res.destroy());
    const bStream = await openStream(h, b);
    closers.push(() => bStream.res.destroy());
    await until(() => maps.at(-1)?.peers.filter((p) => p.online).length === 2, 5000, 'a sees b and c online');
    const before = h.server.mapStreamStats();
    assert.equal((await h.post(`${P}/endpoints`, b.seal('endpoints', { endpoints: ['192.0.2.7:7'] }))).status, 200);
    await until(() => maps.at(-1)?.peers.find((p) => p.name === 'b')?.endpoints[0] === '192.0.2.7:7', 5000, "b's endpoint in a's map");
    const after = h.server.mapStreamStats();
    const deltas = after.deltasWritten - before.deltasWritten;
    assert.equal(deltas, 1, 'one delta, to a');
    assert.ok(after.deltaBytes - before.deltaBytes < 2048, `${after.deltaBytes - before.deltaBytes} bytes`);
    assert.equal(after.deltaResyncs, 0);
    // the whole-map stream of c shows b the same way a's copy does
    await until(() => latestMap(whole)?.peers.find((p) => p.name === 'b')?.endpoints[0] === '192.0.2.7:7', 5000, "b's endpoint in c's map");
    assert.deepEqual(
      maps.at(-1)!.peers.find((p) => p.name === 'b'),
      latestMap(whole)!.peers.find((p) => p.name === 'b'),
    );
    assert.ok(
      whole.lines().every((l) => !l.startsWith('{"type":"delta"')),
      'no delta to a node that did not ask',
    );
    assert.deepEqual(refused, []);
  } finally {
    for (const c of closers) c();
    await h.close();
  }
});
