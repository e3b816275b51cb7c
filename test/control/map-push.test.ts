// Maps are pushed only to the nodes a change reaches: a change to one node's
// endpoints goes to the nodes that may see it and to no bystander, an update
// that changes nothing sends nothing, and a map line joined from a snapshot's
// pieces is the map the registry builds for that node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { admin } from '../../src/control/admin-client.js';
import { addDevice } from '../../src/control/devices.js';
import { setPolicy } from '../../src/control/policy.js';
import { Registry } from '../../src/control/registry.js';
import type { NodeRecord } from '../../src/control/store.js';
import { SqliteStore } from '../../src/control/sqlite-store.js';
import { createAuthKey } from '../../src/control/authkeys.js';
import { keyToText } from '../../src/crypto/keys.js';
import { generatePrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';
import { discoKey, harness, latestMap, Node, openStream, registerBody, tempDir, until, type Harness, type OpenStream } from './helpers.js';

const P = '/meshctl/v1';

/** The map lines (not keepalives) a stream carried. */
const maps = (s: OpenStream): string[] => s.lines().filter((l) => l.startsWith('{"type":"map"'));

async function join(h: Harness, key: string, names: string[]): Promise<{ node: Node; ip: string; stream: OpenStream }[]> {
  const out = [];
  for (const name of names) {
    const node = new Node(h.server.publicKey!);
    const r = await h.post(`${P}/register`, node.seal('register', registerBody(key, name)));
    assert.equal(r.status, 200);
    out.push({ node, ip: (r.body.node as { addresses: string[] }).addresses[0]!, stream: undefined as unknown as OpenStream });
  }
  for (const n of out) n.stream = await openStream(h, n.node);
  return out;
}

const endpointsOf = (s: OpenStream, peer: string): string[] | undefined => latestMap(s)?.peers.find((p) => p.name === peer)?.endpoints;

test('an endpoint change reaches the nodes that see the node, and no line reaches a bystander', async () => {
  const h = await harness();
  let nodes: { node: Node; ip: string; stream: OpenStream }[] = [];
  try {
    const key = await h.authKey();
    nodes = await join(h, key, ['a1', 'a2', 'b1', 'b2']);
    const [a1, a2, b1, b2] = nodes as [(typeof nodes)[0], (typeof nodes)[0], (typeof nodes)[0], (typeof nodes)[0]];
    // two pairs that see only each other
    await admin.setPolicy(
      h.dir,
      JSON.stringify({
        acls: [
          { action: 'accept', src: [a1.ip], dst: [`${a2.ip}:*`] },
          { action: 'accept', src: [b1.ip], dst: [`${b2.ip}:*`] },
        ],
      }),
    );
    const settled = (s: OpenStream, peer: string): boolean => {
      const m = latestMap(s);
      return m?.packetFilter !== undefined && m.peers.length === 1 && m.peers[0]!.name === peer && m.peers[0]!.online;
    };
    await until(() => settled(a2.stream, 'a1') && settled(a1.stream, 'a2') && settled(b1.stream, 'b2') && settled(b2.stream, 'b1'), 5000, 'pairs');
    // a first change that reaches b1 and b2: once both hold it, nothing written before it can arrive later
    assert.equal((await h.post(`${P}/endpoints`, b2.node.seal('endpoints', { endpoints: ['192.0.2.3:3'] }))).status, 200);
    await until(() => endpointsOf(b1.stream, 'b2')?.includes('192.0.2.3:3') === true, 5000, 'first b2 endpoints in b1 map');
    await until(() => latestMap(b2.stream)?.self.endpoints.includes('192.0.2.3:3') === true, 5000, 'first b2 own endpoints');
    const b1Before = maps(b1.stream).length;
    const b2Before = maps(b2.stream).length;

    assert.equal((await h.post(`${P}/endpoints`, a1.node.seal('endpoints', { endpoints: ['192.0.2.1:1'] }))).status, 200);
    await until(() => endpointsOf(a2.stream, 'a1')?.includes('192.0.2.1:1') === true, 5000, 'a1 endpoints in a2 map');
    // a later change that does reach b1: the server writes b1's lines in order, so any map from a1's change would come first
    assert.equal((await h.post(`${P}/endpoints`, b2.node.seal('endpoints', { endpoints: ['192.0.2.2:2'] }))).status, 200);
    await until(() => endpointsOf(b1.stream, 'b2')?.includes('192.0.2.2:2') === true, 5000, 'b2 endpoints in b1 map');
    assert.equal(
      maps(b1.stream).length,
      b1Before + 1,
      `b1 got exactly the map of the change that concerns it: ${maps(b1.stream)
        .slice(b1Before - 1)
        .join('\n')}`,
    );
    // b2 gets its own new endpoints
    await until(() => latestMap(b2.stream)?.self.endpoints.includes('192.0.2.2:2') === true, 5000, 'b2 own endpoints');
    assert.equal(maps(b2.stream).length, b2Before + 1);
  } finally {
    for (const n of nodes) n.stream?.res.destroy();
    await h.close();
  }
});

test('without a policy: an update that changes nothing sends no map; a change sends one to every other node', async () => {
  const h = await harness();
  let nodes: { node: Node; ip: string; stream: OpenStream }[] = [];
  try {
    const key = await h.authKey();
    nodes = await join(h, key, ['x', 'y', 'z']);
    const [x, y, z] = nodes as [(typeof nodes)[0], (typeof nodes)[0], (typeof nodes)[0]];
    assert.equal((await h.post(`${P}/endpoints`, x.node.seal('endpoints', { endpoints: ['192.0.2.9:9'] }))).status, 200);
    const allOnline = (s: OpenStream): boolean => latestMap(s)?.peers.every((p) => p.online) === true && latestMap(s)!.peers.length === 2;
    await until(() => [y, z].every((n) => endpointsOf(n.stream, 'x')?.includes('192.0.2.9:9') && allOnline(n.stream)) && allOnline(x.stream), 5000, 'x seen');
    const before = nodes.map((n) => maps(n.stream).length);
    // the same endpoints again: nothing any map shows changes
    assert.equal((await h.post(`${P}/endpoints`, x.node.seal('endpoints', { endpoints: ['192.0.2.9:9'] }))).status, 200);
    // past the 25 ms coalescing window, so a push for the repeat would be a broadcast of its own (a longer wait
    // only makes the check stricter; the counts below never depend on timing)
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await h.post(`${P}/endpoints`, y.node.seal('endpoints', { endpoints: ['192.0.2.8:8'] }))).status, 200);
    await until(() => [x, z].every((n) => endpointsOf(n.stream, 'y')?.includes('192.0.2.8:8')), 5000, 'y seen');
    assert.deepEqual(
      nodes.map((n) => maps(n.stream).length),
      [before[0]! + 1, before[1]! + 1, before[2]! + 1],
      'one map each for the change of y (its own too), none for the repeat of x',
    );
  } finally {
    for (const n of nodes) n.stream?.res.destroy();
    await h.close();
  }
});

test('a map line joined from a snapshot is the JSON of the map the registry builds, with a policy, devices and routes', async () => {
  const dir = tempDir();
  const store = new SqliteStore(`${dir}/control.db`);
  try {
    const r = await Registry.open(store, { keyExpiryMs: null });
    const key = (await createAuthKey(store, { reusable: true, ephemeral: false, expiryMs: null })).key;
    const names = ['gw', 'laptop', 'nas', 'other'];
    const nodes: NodeRecord[] = [];
    for (const [i, hostname] of names.entries())
      nodes.push(
        await r.register(keyToText(publicKeyOf(generatePrivateKey())), {
          authKey: key,
          hostname,
          os: 'linux',
          version: 't',
          discoKey: discoKey(),
          endpoints: [`192.0.2.${i + 1}:41641`],
          ...(hostname === 'gw' ? { advertised: { routes: ['10.9.0.0/24'], exitNode: false } } : {}),
        }),
      );
    await r.store.approveRoute({ nodeId: nodes[0]!.id, prefix: '10.9.0.0/24' });
    await addDevice(r, 'phone', 'gw', keyToText(publicKeyOf(generatePrivateKey())));
    const check = async (): Promise<void> => {
      const snap = r.snapshot((id) => id % 2 === 0, []);
      for (const n of nodes) {
        const fresh = (await store.getNode(n.id))!;
        assert.deepEqual(JSON.parse(snap.lineFor(fresh)), { type: 'map', map: r.mapFor(fresh, (id) => id % 2 === 0, []) });
      }
    };
    await check();
    await setPolicy(
      r,
      JSON.stringify({
        acls: [
          { action: 'accept', src: [nodes[1]!.ipv4], dst: [`${nodes[2]!.ipv4}:22`, `${nodes[0]!.ipv4}:*`, '10.9.0.0/24:*'] },
          { action: 'accept', src: [nodes[3]!.ipv4], dst: [`${nodes[3]!.ipv4}:*`] },
        ],
      }),
    );
    await check();
    // under this policy an endpoint change of `other` may change only its own map
    const before = r.snapshot(() => true, []);
    const sent = new Map(nodes.map((n) => [n.id, { seq: before.seq, visible: before.visibleTo(n.id) && new Set(before.visibleTo(n.id)), digest: '' }]));
    await r.store.updateNode(nodes[3]!.id, { endpoints: ['198.51.100.1:1'] });
    const after = r.snapshot(() => true, []);
    assert.deepEqual(
      nodes.map((n) => r.changes.mayHaveChanged(n.id, sent.get(n.id)!, after.visibleTo(n.id))),
      [false, false, false, true],
    );
  } finally {
    await store.close();
  }
});
