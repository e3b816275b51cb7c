// Subnet routing on one node: the destination policy from a map, the route
// settings' parser, and the whole life of table 52, its rules and the SNAT
// table on the real kernel in a namespace this test makes
// (fixtures/subnet-routes-probe.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { destinationPolicy } from '../../src/daemon/subnet-routes.js';
import { parseRouteList, parseRoutePrefs } from '../../src/daemon/route-prefs.js';
import { rootSkipReason } from '../helpers/root.js';
import { Lab, must } from '../helpers/netns.js';
import { packageRoot } from '../../src/cli/version.js';
import { testNodeView } from './node-view.js';

test('destination policy: own addresses, resolver addresses, primary routes (not merely approved), devices it gateways', () => {
  const self = testNodeView(1, { name: 'router', routes: ['192.168.77.0/24', '10.9.0.0/16'], primaryRoutes: ['192.168.77.0/24'] });
  const policy = destinationPolicy({
    self,
    peers: [testNodeView(2, { primaryRoutes: ['10.20.0.0/16'], routes: ['10.20.0.0/16'] })],
    ipv4Prefix: '100.64.0.0/10',
    ipv6Prefix: 'fd7a:115c:a1e0::/48',
    relays: [],
    dns: { suffix: 'mesh.internal', resolvers: ['100.100.100.100', 'fd7a:115c:a1e0::53'], routes: [], records: [] },
    devices: [
      { id: 1, name: 'phone', addresses: ['100.64.1.5', 'fd7a:115c:a1e0::1:5'], gateway: 'router' },
      { id: 2, name: 'tablet', addresses: ['100.64.1.6'], gateway: 'node2' },
    ],
  });
  assert.deepEqual(policy.prefixes.map((p) => p.text).sort(), [
    '100.100.100.100/32',
    '100.64.0.1/32',
    '100.64.1.5/32',
    '192.168.77.0/24',
    'fd7a:115c:a1e0::1/128',
    'fd7a:115c:a1e0::1:5/128',
    'fd7a:115c:a1e0::53/128',
  ]);
  assert.equal(policy.anyV4, false);
  const exit = destinationPolicy({ self: { ...self, exitNode: true }, peers: [], ipv4Prefix: '100.64.0.0/10', ipv6Prefix: 'fd7a:115c:a1e0::/48', relays: [] });
  assert.deepEqual([exit.anyV4, exit.anyV6], [true, true], 'an approved exit node takes any destination');
});

test('route settings: prefixes canonical and deduplicated; host bits, default routes, junk and too many are refused by name', () => {
  assert.deepEqual(parseRouteList(['192.168.1.0/24', 'FD00:1::/64', '192.168.1.0/24'], 'x'), ['192.168.1.0/24', 'fd00:1::/64']);
  assert.deepEqual(parseRouteList([], 'x'), []);
  assert.throws(() => parseRouteList(['192.168.1.1/24'], 'x'), /192\.168\.1\.1\/24 has bits set.*192\.168\.1\.0\/24/);
  assert.throws(() => parseRouteList(['0.0.0.0/0'], 'x'), /default route.*--advertise-exit-node/);
  assert.throws(() => parseRouteList(['10.0.0.0/33'], 'x'), /not a prefix/);
  assert.throws(
    () => parseRouteList(['a\u001b[31m'], 'x'),
    (e: Error) => !e.message.includes('\u001b'),
  );
  assert.throws(() => parseRouteList('10.0.0.0/8', 'x'), /must be a list/);
  assert.throws(
    () =>
      parseRouteList(
        Array.from({ length: 65 }, (_, i) => `10.${i}.0.0/16`),
        'x',
      ),
    /at most 64/,
  );
  assert.deepEqual(
    parseRoutePrefs({}, (k) => k),
    { advertiseRoutes: [], acceptRoutes: false, snatSubnetRoutes: true, advertiseExitNode: false, exitNode: '', exitNodeAllowLanAccess: false },
  );
  assert.throws(() => parseRoutePrefs({ acceptRoutes: 'yes' }, (k) => `prefs.${k}`), /prefs\.acceptRoutes/);
});

interface Probe {
  first: {
    table: string[];
    rules: number[];
    nft: string;
    health: string[];
    peer: { prefix: string; installed: boolean; why: string | null }[];
    offline: { why: string }[];
  };
  second: { table: string[] };
  noSnat: { nft: string };
  noAccept: { table: string[]; rules: number[] };
  stopped: { table: string[]; rules: number[]; nft: string };
  beforeRecover: { table: number; rules: number };
  recovered: { table: string[]; rules: number[]; nft: string };
  logs: string[];
}

test('table 52, rules and SNAT on the real kernel: reconciled per map, LAN-covering and non-primary routes kept out, all removed on stop and after a kill', {
  skip: rootSkipReason('nft'),
}, async () => {
  const lab = new Lab();
  try {
    const ns = await lab.netns('sr');
    await must('ip', ['-n', ns, 'link', 'add', 'lan0', 'type', 'veth', 'peer', 'name', 'lan1']);
    await must('ip', ['-n', ns, 'addr', 'add', '192.168.50.1/24', 'dev', 'lan0']);
    await must('ip', ['-n', ns, 'link', 'set', 'lan0', 'up']);
    await must('ip', ['-n', ns, 'link', 'set', 'lan1', 'up']);
    const r = await lab.exec(ns, [process.execPath, join(packageRoot(), 'dist', 'test', 'daemon', 'fixtures', 'subnet-routes-probe.js')], 60_000);
    assert.equal(r.code, 0, `probe failed: ${r.stderr}`);
    const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as Probe;
    assert.deepEqual(res.first.table, ['10.9.0.0/16', '192.168.77.0/24', 'fd00:77::/64'], 'primary routes of online peers, minus the LAN');
    assert.deepEqual(res.first.rules, [5210, 5230, 5250, 5270, 5210, 5230, 5250, 5270]);
    const why = Object.fromEntries(res.first.peer.map((x) => [x.prefix, x.why]));
    assert.match(why['192.168.50.0/24']!, /overlaps this host's LAN 192\.168\.50\.0\/24 \(lan0\)/);
    assert.match(why['192.168.60.0/24']!, /not primary/);
    assert.equal(why['192.168.77.0/24'], null);
    assert.match(res.first.offline[0]!.why, /offline/);
    assert.match(res.first.nft, /table inet meshctl-subnets/);
    assert.match(res.first.nft, /ip daddr 172\.20\.0\.0\/16 masquerade/);
    assert.ok(
      res.first.health.some((h) => /IPv4 forwarding is off.*sysctl -w net\.ipv4\.ip_forward=1/.test(h)),
      res.first.health.join('\n'),
    );
    assert.deepEqual(res.second.table, ['10.11.0.0/16', '192.168.77.0/24'], 'withdrawn routes deleted, new ones added');
    assert.doesNotMatch(res.noSnat.nft, /masquerade/);
    assert.deepEqual(res.noAccept, { table: [], rules: [] });
    assert.deepEqual([res.stopped.table, res.stopped.rules], [[], []]);
    assert.doesNotMatch(res.stopped.nft, /meshctl/);
    assert.ok(res.beforeRecover.table > 0 && res.beforeRecover.rules > 0, JSON.stringify(res.beforeRecover));
    assert.deepEqual([res.recovered.table, res.recovered.rules], [[], []]);
    assert.doesNotMatch(res.recovered.nft, /meshctl/);
  } finally {
    await lab.cleanup();
  }
});
