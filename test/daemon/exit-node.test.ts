// Choosing an exit node from the map, what the engine gets, and what status says when it goes away.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NetworkMap } from '../../src/netmap/types.js';
import {
  DEFAULT_EXIT_NODE_PREFS,
  exitNodeHealth,
  exitNodeRefusal,
  exitNodeState,
  parseExitNodeSelector,
  servesAsExitNode,
  withExitNode,
} from '../../src/daemon/exit-node.js';
import { snatRuleset } from '../../src/daemon/snat.js';
import { EXIT_ROUTES } from '../../src/daemon/exit-node.js';
import { testNodeView } from './node-view.js';

const map = (over: Partial<ReturnType<typeof testNodeView>> = {}): NetworkMap => ({
  self: testNodeView(1, { name: 'laptop' }),
  peers: [testNodeView(2, { name: 'exit', exitNode: true, ...over }), testNodeView(3, { name: 'nas' })],
  ipv4Prefix: '100.64.0.0/10',
  ipv6Prefix: 'fd7a:115c:a1e0::/48',
  relays: [],
});
const prefs = (exitNode: string) => ({ ...DEFAULT_EXIT_NODE_PREFS, exitNode });

test('the selector: empty turns it off, an IP is canonical, a name is lower case; junk is refused by name', () => {
  assert.equal(parseExitNodeSelector('', 'x'), '');
  assert.equal(parseExitNodeSelector('FD7A:115C:A1E0::0002', 'x'), 'fd7a:115c:a1e0::2');
  assert.equal(parseExitNodeSelector('Exit.mesh.internal.', 'x'), 'exit.mesh.internal');
  assert.throws(() => parseExitNodeSelector('a b;rm', 'exitNode'), /exitNode: .* is not a node name or mesh IP/);
  assert.throws(() => parseExitNodeSelector(7, 'exitNode'), /must be a node name or mesh IP/);
});

test('only an approved exit node in the map may be chosen', () => {
  assert.equal(exitNodeRefusal(map(), 'exit'), null);
  assert.equal(exitNodeRefusal(map(), '100.64.0.2'), null);
  assert.equal(exitNodeRefusal(map(), 'exit.mesh.internal'), null);
  assert.match(exitNodeRefusal(map(), 'nas')!, /nas is not an approved exit node/);
  assert.match(exitNodeRefusal(map(), 'nobody')!, /not a peer in this network/);
});

test('the engine gets the default routes on the exit node only while it is approved and online', () => {
  const on = withExitNode(map(), prefs('exit'));
  assert.deepEqual(on.peers[0]!.allowedIps.slice(-2), ['0.0.0.0/0', '::/0']);
  assert.ok(!on.peers[1]!.allowedIps.includes('0.0.0.0/0'));
  for (const m of [map({ online: false }), map({ exitNode: false })]) assert.ok(!withExitNode(m, prefs('exit')).peers[0]!.allowedIps.includes('0.0.0.0/0'));
  const m = map();
  assert.equal(withExitNode(m, prefs('')), m, 'no exit node: the map as it is');
});

test('an exit node that went away is a health line saying internet traffic is blocked', () => {
  assert.equal(exitNodeHealth(exitNodeState(map(), prefs('exit'))), null);
  assert.equal(
    exitNodeHealth(exitNodeState(map({ online: false }), prefs('exit'))),
    'exit node exit is offline: traffic to the internet is blocked; `meshctl up --exit-node=` to turn it off',
  );
  assert.match(exitNodeHealth(exitNodeState(map(), prefs('gone')))!, /exit node gone is no longer in the network: traffic to the internet is blocked/);
  assert.match(exitNodeHealth(exitNodeState(map({ exitNode: false }), prefs('exit')))!, /no longer an approved exit node/);
  assert.equal(exitNodeState(map(), prefs('')), null);
});

test('a node serves as exit node only when it advertises it and control approved it', () => {
  const self = testNodeView(1, { exitNode: true });
  assert.equal(servesAsExitNode(self, { ...DEFAULT_EXIT_NODE_PREFS, advertiseExitNode: true }), true);
  assert.equal(servesAsExitNode(self, DEFAULT_EXIT_NODE_PREFS), false);
  assert.equal(servesAsExitNode(testNodeView(1), { ...DEFAULT_EXIT_NODE_PREFS, advertiseExitNode: true }), false);
});

test('the exit node masquerades any IPv4 and IPv6 destination (NAT66): one rule per family, no address match', () => {
  const rules = snatRuleset('meshctl0', EXIT_ROUTES).nftables.filter((c) => 'add' in c && 'rule' in (c.add as object));
  const post = rules.map((c) => JSON.stringify(c)).filter((t) => t.includes('masquerade'));
  assert.equal(post.length, 2);
  assert.ok(post[0]!.includes('"nfproto"') && post[0]!.includes('"ipv4"') && !post[0]!.includes('daddr'));
  assert.ok(post[1]!.includes('"ipv6"') && !post[1]!.includes('daddr'));
});
