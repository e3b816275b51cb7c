// What a policy compiles to per node: which rules reach which node (its own
// addresses, the routes, exit and devices it serves), with which sources, and
// which peers each node sees; and the incremental engine against a full
// recompute on random changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PolicyEngine } from '../../src/policy/engine.js';
import { parsePolicy } from '../../src/policy/parse.js';
import { autoApproves } from '../../src/policy/check.js';
import type { PolicyNode } from '../../src/policy/types.js';
import { MAX_FILTER_DESTINATIONS, parseNetworkMap } from '../../src/netmap/parse.js';
import { prng } from '../helpers/control-seed.js';

const KEY = Buffer.alloc(32, 7).toString('base64');
const MAP = {
  self: {
    id: 1,
    name: 'a',
    nodeKey: KEY,
    discoKey: KEY,
    addresses: ['100.64.0.1'],
    allowedIps: ['100.64.0.1/32'],
    endpoints: [],
    homeRelay: null,
    online: true,
    lastSeen: null,
    os: '',
    version: '',
    keyExpiry: null,
    ephemeral: false,
  },
  peers: [],
  ipv4Prefix: '100.64.0.0/10',
  ipv6Prefix: 'fd7a:115c:a1e0::/48',
  relays: [],
};

const MESH = ['100.64.0.0/10', 'fd7a:115c:a1e0::/48'];

const node = (id: number, o: Partial<PolicyNode> = {}): PolicyNode => ({
  id,
  user: null,
  tags: [],
  addresses: [`100.64.0.${id}`, `fd7a:115c:a1e0::${id}`],
  routes: [],
  exitNode: false,
  deviceAddresses: [],
  ...o,
});

const POLICY = `{
  "groups": { "group:admins": ["alice"] },
  "tagOwners": { "tag:nas": ["group:admins"], "tag:server": [], "tag:router": [] },
  "acls": [
    { "action": "accept", "src": ["group:admins"], "dst": ["tag:nas:22"] },
    { "action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self:*"] },
    { "action": "accept", "src": ["bob"], "dst": ["192.168.1.0/24:443"], "proto": "tcp" },
  ],
}`;

// 1, 2: alice's laptop and phone; 3: bob; 4: the NAS (tagged); 5: a server (tagged); 6: a router for 192.168.0.0/16
const NODES = [
  node(1, { user: 'alice' }),
  node(2, { user: 'alice' }),
  node(3, { user: 'bob' }),
  node(4, { tags: ['tag:nas'] }),
  node(5, { tags: ['tag:server'] }),
  node(6, { tags: ['tag:router'], routes: ['192.168.0.0/16'] }),
];

test('rules reach the node their destination names, with the sources resolved to addresses', () => {
  const e = new PolicyEngine(parsePolicy(POLICY), MESH, NODES);
  // the NAS: alice's two nodes on 22
  assert.deepEqual(e.filterOf(4), [
    {
      srcIps: ['100.64.0.1/32', '100.64.0.2/32', 'fd7a:115c:a1e0::1/128', 'fd7a:115c:a1e0::2/128'],
      dstPorts: [
        { ip: '100.64.0.4/32', first: 22, last: 22 },
        { ip: 'fd7a:115c:a1e0::4/128', first: 22, last: 22 },
      ],
      protocols: [],
    },
  ]);
  // alice's laptop: only her own nodes (autogroup:self), any port
  assert.deepEqual(e.filterOf(1), [
    {
      srcIps: ['100.64.0.1/32', '100.64.0.2/32', 'fd7a:115c:a1e0::1/128', 'fd7a:115c:a1e0::2/128'],
      dstPorts: [
        { ip: '100.64.0.1/32', first: 0, last: 65535 },
        { ip: 'fd7a:115c:a1e0::1/128', first: 0, last: 65535 },
      ],
      protocols: [],
    },
  ]);
  // bob: self only, from his own node
  assert.deepEqual(e.filterOf(3)![0]!.srcIps, ['100.64.0.3/32', 'fd7a:115c:a1e0::3/128']);
  // the router filters for the part of its route the rule names
  assert.deepEqual(e.filterOf(6), [
    { srcIps: ['100.64.0.3/32', 'fd7a:115c:a1e0::3/128'], dstPorts: [{ ip: '192.168.1.0/24', first: 443, last: 443 }], protocols: [6] },
  ]);
  // the server: nothing may open a connection to it
  assert.deepEqual(e.filterOf(5), []);
});

test('visibility: the peers a node may reach or that may reach it, routers included; symmetric', () => {
  const e = new PolicyEngine(parsePolicy(POLICY), MESH, NODES);
  const peers = (id: number): number[] => [...e.peersOf(id)!].sort();
  assert.deepEqual(peers(1), [2, 4]);
  assert.deepEqual(peers(2), [1, 4]);
  assert.deepEqual(peers(3), [6]);
  assert.deepEqual(peers(4), [1, 2]);
  assert.deepEqual(peers(5), []);
  assert.deepEqual(peers(6), [3]);
});

test('devices and exit nodes: the gateway and the exit node carry the rules for what they forward', () => {
  const p = parsePolicy(`{ "acls": [
    { "action": "accept", "src": ["alice"], "dst": ["100.64.9.9:80", "8.8.8.8:53"] } ] }`);
  const e = new PolicyEngine(p, MESH, [
    node(1, { user: 'alice' }),
    node(2, { deviceAddresses: ['100.64.9.9', 'fd7a:115c:a1e0::99'] }),
    node(3, { exitNode: true }),
  ]);
  assert.deepEqual(e.filterOf(2)![0]!.dstPorts, [{ ip: '100.64.9.9/32', first: 80, last: 80 }]);
  // the exit node forwards to 8.8.8.8; 100.64.9.9 is inside the mesh, never the exit node's
  assert.deepEqual(e.filterOf(3)![0]!.dstPorts, [{ ip: '8.8.8.8/32', first: 53, last: 53 }]);
  assert.deepEqual([...e.peersOf(1)!].sort(), [2, 3]);
});

test('autoApprovers: routes inside an approved prefix and exit nodes, by tag or owner', () => {
  const p = parsePolicy(`{ "groups": {"group:net": ["alice"]}, "tagOwners": {"tag:router": []},
    "autoApprovers": { "routes": { "10.0.0.0/8": ["tag:router"] }, "exitNode": ["group:net"] } }`);
  assert.equal(autoApproves(p, '10.1.0.0/16', { user: null, tags: ['tag:router'] }), true);
  assert.equal(autoApproves(p, '192.168.0.0/24', { user: null, tags: ['tag:router'] }), false);
  assert.equal(autoApproves(p, '10.1.0.0/16', { user: 'alice', tags: [] }), false);
  assert.equal(autoApproves(p, 'exit', { user: 'alice', tags: [] }), true);
  assert.equal(autoApproves(p, 'exit', { user: 'bob', tags: [] }), false);
});

const RANDOM_POLICY = `{
  "groups": { "group:a": ["alice", "bob"] },
  "tagOwners": { "tag:nas": [], "tag:web": [], "tag:router": [] },
  "hosts": { "lan": "192.168.0.0/16" },
  "acls": [
    { "action": "accept", "src": ["group:a"], "dst": ["tag:nas:22"] },
    { "action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self:*"] },
    { "action": "accept", "src": ["tag:web"], "dst": ["tag:nas:5432", "host:lan:80"] },
    { "action": "accept", "src": ["carol", "100.64.0.7"], "dst": ["autogroup:tagged:443", "8.8.8.8:53"] },
    { "action": "accept", "src": ["100.64.0.0/28"], "dst": ["alice:*"] },
  ],
}`;

test('incremental recompute equals a full recompute after every random change (seeded)', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const r = prng(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
    const randomNode = (id: number): PolicyNode => {
      const tagged = r() < 0.4;
      return node(id, {
        user: tagged ? null : pick(['alice', 'bob', 'carol', 'dave']),
        tags: tagged ? pick([['tag:nas'], ['tag:web'], ['tag:router'], ['tag:nas', 'tag:web']]) : [],
        routes: r() < 0.2 ? [pick(['192.168.1.0/24', '10.0.0.0/8', '192.168.0.0/16'])] : [],
        exitNode: r() < 0.1,
        deviceAddresses: r() < 0.1 ? [`100.64.1.${id}`] : [],
      });
    };
    const policy = parsePolicy(RANDOM_POLICY);
    const nodes = new Map<number, PolicyNode>();
    for (let id = 1; id <= 20; id++) nodes.set(id, randomNode(id));
    const e = new PolicyEngine(policy, MESH, nodes.values());
    let nextId = 21;
    for (let step = 0; step < 60; step++) {
      const kind = r();
      if (kind < 0.3) nodes.set(nextId, randomNode(nextId++));
      else if (kind < 0.5 && nodes.size > 1) nodes.delete(pick([...nodes.keys()]));
      else {
        const id = pick([...nodes.keys()]);
        nodes.set(id, randomNode(id));
      }
      e.sync(nodes.values());
      const full = new PolicyEngine(policy, MESH, nodes.values());
      for (const id of nodes.keys()) {
        assert.deepEqual(e.filterOf(id), full.filterOf(id), `seed ${seed} step ${step} node ${id}: filter`);
        assert.deepEqual([...e.peersOf(id)!].sort(), [...full.peersOf(id)!].sort(), `seed ${seed} step ${step} node ${id}: peers`);
      }
      assert.ok(e.lastRecomputed <= nodes.size + 1);
    }
  }
});

test('a change recomputes only the nodes whose edges it touches', () => {
  const nodes = [...NODES];
  const e = new PolicyEngine(parsePolicy(POLICY), MESH, nodes);
  // a new tagged server: nothing reaches it and it reaches nothing: only itself
  e.sync([...nodes, node(7, { tags: ['tag:server'] })]);
  assert.equal(e.lastRecomputed, 1);
  // a new NAS: alice's two nodes gain it as a peer, and it them
  e.sync([...nodes, node(7, { tags: ['tag:server'] }), node(8, { tags: ['tag:nas'] })]);
  assert.equal(e.lastRecomputed, 3);
  assert.deepEqual([...e.peersOf(1)!].sort(), [2, 4, 8]);
});

test('a rule with more destinations than a node accepts is split, never sent whole', () => {
  const ports = Array.from({ length: 64 }, (_, i) => i + 1).join(',');
  const dst = Array.from({ length: 8 }, () => `"alice:${ports}"`).join(',');
  const e = new PolicyEngine(parsePolicy(`{"acls":[{"action":"accept","src":["*"],"dst":[${dst}]}]}`), MESH, [node(1, { user: 'alice' })]);
  const rules = e.filterOf(1)!;
  assert.deepEqual(
    rules.map((r) => r.dstPorts.length),
    [MAX_FILTER_DESTINATIONS, 8 * 64 * 2 - MAX_FILTER_DESTINATIONS],
  );
  // what the node's parser accepts
  assert.equal(parseNetworkMap({ ...MAP, packetFilter: rules }).packetFilter!.length, 2);
});
