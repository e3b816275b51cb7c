import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatStatus, peerState, stoppedMessage } from '../../src/cli/status-format.js';
import type { PeerStatus, Status } from '../../src/localapi/types.js';
import { parseDuration } from '../../src/util/duration.js';

const NOW = Date.parse('2026-11-26T12:00:00Z');
const peer = (o: Partial<PeerStatus>): PeerStatus => ({
  name: 'nas',
  dnsName: null,
  ips: ['100.64.0.2', 'fd00::2'],
  nodeKey: 'k',
  os: 'linux',
  online: true,
  lastSeen: null,
  active: false,
  path: { kind: 'none' },
  lastHandshake: null,
  txBytes: 0,
  rxBytes: 0,
  endpoints: [],
  ...o,
});

test('STATUS names the path, never a bare dash', () => {
  assert.equal(
    peerState(peer({ active: true, path: { kind: 'direct', endpoint: '10.0.0.2:41641', latencyMs: 1, trusted: true }, txBytes: 12, rxBytes: 34 }), NOW),
    'active; direct 10.0.0.2:41641, tx 12 rx 34',
  );
  assert.equal(peerState(peer({ path: { kind: 'direct', endpoint: '10.0.0.2:41641', latencyMs: 1, trusted: true } }), NOW), 'idle; direct 10.0.0.2:41641');
  assert.equal(peerState(peer({ active: true, path: { kind: 'relay', region: 'fra' } }), NOW), 'active; relay "fra", tx 0 rx 0');
  assert.equal(peerState(peer({}), NOW), 'idle; no path yet');
  assert.equal(peerState(peer({ online: false, lastSeen: '2026-11-26T11:55:00Z' }), NOW), 'offline, last seen 5m ago');
});

test('the table aligns columns and filters --active and --no-self', () => {
  const s: Status = {
    version: '0',
    backendState: 'Running',
    self: { name: 'me', dnsName: null, ips: ['100.64.0.1'], nodeKey: 'k', os: 'linux', ifname: 'meshctl0', listenPort: 1, endpoints: [] },
    control: { url: 'https://c', connected: true, lastError: null },
    peers: [
      peer({ name: 'a-long-name', active: true, path: { kind: 'direct', endpoint: '1.2.3.4:5', latencyMs: 1, trusted: true } }),
      peer({ name: 'b', ips: ['100.64.0.3'] }),
    ],
    health: [],
    homeRegion: null,
    relays: [],
    counters: null,
  };
  const all = formatStatus(s, { self: true, peers: true, activeOnly: false }, NOW).split('\n');
  assert.equal(all[0], '100.64.0.1  me           linux  self');
  assert.equal(all[1], '100.64.0.2  a-long-name  linux  active; direct 1.2.3.4:5, tx 0 rx 0');
  assert.equal(all[2], '100.64.0.3  b            linux  idle; no path yet');
  assert.equal(formatStatus(s, { self: false, peers: true, activeOnly: true }, NOW), '100.64.0.2  a-long-name  linux  active; direct 1.2.3.4:5, tx 0 rx 0\n');
  assert.equal(stoppedMessage(s), null);
  assert.equal(stoppedMessage({ ...s, backendState: 'Stopped' }), 'meshctl is stopped.');
  // with the mesh's name service, the HOSTNAME column holds the full name
  const named: Status = {
    ...s,
    self: { ...s.self!, dnsName: 'me.mesh.internal' },
    peers: [peer({ name: 'b', dnsName: 'b.mesh.internal', ips: ['100.64.0.3'] })],
  };
  assert.deepEqual(formatStatus(named, { self: true, peers: true, activeOnly: false }, NOW).split('\n'), [
    '100.64.0.1  me.mesh.internal  linux  self',
    '100.64.0.3  b.mesh.internal   linux  idle; no path yet',
    '',
  ]);
});

test('durations', () => {
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('7d'), 604_800_000);
  for (const bad of ['', '5', 'soon', '1x', '-1s', '1s2']) assert.equal(parseDuration(bad), null, bad);
});

test('routes under the table: what this node advertises and how far each got; each peer route installed or why not', () => {
  const s: Status = {
    version: '0',
    backendState: 'Running',
    self: {
      name: 'me',
      dnsName: null,
      ips: ['100.64.0.1'],
      nodeKey: 'k',
      os: 'linux',
      ifname: 'meshctl0',
      listenPort: 1,
      endpoints: [],
      routes: {
        advertised: ['192.168.1.0/24', '10.1.0.0/16', 'fd00:1::/64'],
        approved: ['192.168.1.0/24', '10.1.0.0/16'],
        primary: ['192.168.1.0/24'],
        acceptRoutes: true,
        snatSubnetRoutes: false,
        forwarding: { ipv4: true, ipv6: true },
        droppedDestination: 0,
      },
    },
    control: { url: 'https://c', connected: true, lastError: null },
    peers: [
      peer({
        name: 'nas',
        routes: [
          { prefix: '192.168.77.0/24', primary: true, installed: true, why: null },
          { prefix: '192.168.1.0/24', primary: true, installed: false, why: "overlaps this host's LAN 192.168.1.0/24 (eth0)" },
        ],
      }),
      peer({ name: 'evil\u001b[2J', routes: [{ prefix: '10.9.0.0/16', primary: false, installed: false, why: 'not primary\u001b[31m' }] }),
    ],
    health: [],
    homeRegion: null,
    relays: [],
    counters: null,
  };
  const lines = formatStatus(s, { self: true, peers: true, activeOnly: false }, NOW).split('\n');
  assert.ok(
    lines.includes('# Advertised routes: 192.168.1.0/24 (primary), 10.1.0.0/16 (approved, not primary), fd00:1::/64 (awaiting approval); SNAT off'),
    lines.join('\n'),
  );
  assert.ok(lines.includes("# Routes via nas: 192.168.77.0/24 installed, 192.168.1.0/24 not installed: overlaps this host's LAN 192.168.1.0/24 (eth0)"));
  assert.ok(!lines.join('\n').includes('\u001b'), 'names and reasons from the network are made terminal-safe');
  assert.ok(!formatStatus(s, { self: false, peers: false, activeOnly: false }, NOW).includes('Routes'));
});
