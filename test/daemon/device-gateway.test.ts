// The gateway side of devices on stock WireGuard, without the engine: which of
// the map's devices this node holds, how they become plain peers, the
// forwarding health lines, and how status shows devices.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deviceForwarding, forwardingHealth, gatewayDevices, plainPeersOf } from '../../src/daemon/device-gateway.js';
import { destinationFilter } from '../../src/engine/device/destination-filter.js';
import { parsePrefix } from '../../src/util/netaddr.js';
import { ipv4Packet } from '../helpers/memnet.js';
import { deviceState, formatStatus } from '../../src/cli/status-format.js';
import type { DeviceView, NetworkMap } from '../../src/netmap/types.js';
import type { DeviceStatus, Status } from '../../src/localapi/types.js';

const KEY = Buffer.alloc(32, 7).toString('base64');
const dev = (o: Partial<DeviceView>): DeviceView => ({ id: 1, name: 'phone', addresses: ['100.64.0.9', 'fd7a:115c:a1e0::9'], gateway: 'home', ...o });

test('the gateway holds its own devices with a key, each as its /32 and /128; bad ones are logged and skipped', () => {
  const map = {
    self: { name: 'home' },
    devices: [dev({ publicKey: KEY }), dev({ name: 'other', gateway: 'office', publicKey: KEY }), dev({ name: 'nokey' })],
  } as unknown as NetworkMap;
  assert.deepEqual(
    gatewayDevices(map).map((d) => d.name),
    ['phone'],
  );
  const logs: string[] = [];
  const peers = plainPeersOf(
    [dev({ publicKey: KEY }), dev({ name: 'badkey', publicKey: 'nope' }), dev({ name: 'badip', publicKey: KEY, addresses: ['1.2.3.4/8'] })],
    (m) => logs.push(m),
  );
  assert.equal(peers.length, 1);
  assert.deepEqual(
    peers[0]!.allowedIps.map((p) => p.text),
    ['100.64.0.9/32', 'fd7a:115c:a1e0::9/128'],
  );
  assert.equal(logs.length, 2);
  assert.match(logs[0]!, /"badkey": ignored, its public key/);
  assert.match(logs[1]!, /"badip": ignored, not an IP address/);
});

test('the destination check lets a gateway forward its devices’ packets into the mesh and its routes, nothing else', () => {
  const map = {
    self: { name: 'home' },
    ipv4Prefix: '100.64.0.0/10',
    ipv6Prefix: 'fd7a:115c:a1e0::/48',
    peers: [{ name: 'nas', primaryRoutes: ['192.168.50.0/24'] }],
    devices: [dev({ publicKey: KEY }), dev({ name: 'elsewhere', addresses: ['100.64.0.10'], gateway: 'office' })],
  } as unknown as NetworkMap;
  const stats = { droppedDestination: 0 };
  const self = ['100.64.0.1/32'].map(parsePrefix);
  const pass = destinationFilter({ prefixes: self, devices: deviceForwarding(map) }, stats);
  assert.equal(pass(ipv4Packet('100.64.0.9', '100.64.0.2', 8)), true, 'phone → a mesh node');
  assert.equal(pass(ipv4Packet('100.64.0.9', '192.168.50.7', 8)), true, 'phone → a subnet route another node is primary for');
  assert.equal(pass(ipv4Packet('100.64.0.9', '8.8.8.8', 8)), false, 'phone → the internet through the gateway');
  assert.equal(pass(ipv4Packet('100.64.0.9', '10.89.0.1', 8)), false, 'phone → the gateway’s LAN');
  assert.equal(pass(ipv4Packet('100.64.0.10', '100.64.0.2', 8)), false, 'a device of another gateway is not forwarded here');
  assert.equal(pass(ipv4Packet('100.64.0.2', '100.64.0.3', 8)), false, 'a mesh node does not get forwarded through a gateway');
  assert.equal(pass(ipv4Packet('100.64.0.2', '100.64.0.1', 8)), true, 'the gateway itself');
  assert.equal(stats.droppedDestination, 4);
  const notGateway = deviceForwarding({ ...map, self: { name: 'nas' } } as unknown as NetworkMap);
  assert.deepEqual(notGateway, { sources: [], destinations: [] }, 'a node with no devices forwards nothing for them');
});

test('a gateway with forwarding off says so, per family, only while it has devices', () => {
  const state: Record<4 | 6, boolean | null> = { 4: false, 6: true };
  const read = (fam: 4 | 6) => state[fam];
  assert.deepEqual(forwardingHealth(0, read), []);
  const h = forwardingHealth(2, read);
  assert.equal(h.length, 1);
  assert.match(
    h[0]!,
    /^IPv4 forwarding is off: the 2 devices behind this gateway can reach only this node over IPv4; run `sysctl -w net\.ipv4\.ip_forward=1`$/,
  );
  state[4] = true;
  assert.deepEqual(forwardingHealth(1, read), []);
  state[6] = null;
  assert.deepEqual(forwardingHealth(1, read), [], 'no IPv6 on the host: nothing to say');
  state[6] = false;
  assert.match(forwardingHealth(1, read)[0]!, /^IPv6 forwarding is off: the 1 device behind .*net\.ipv6\.conf\.all\.forwarding=1/);
});

test('status shows each device with its gateway, and at the gateway its endpoint and handshake', () => {
  const NOW = Date.parse('2026-11-26T12:00:00Z');
  const d = (o: Partial<DeviceStatus>): DeviceStatus => ({
    name: 'phone',
    ips: ['100.64.0.9'],
    gateway: 'home',
    viaSelf: false,
    endpoint: null,
    lastHandshake: null,
    txBytes: 0,
    rxBytes: 0,
    ...o,
  });
  assert.equal(deviceState(d({}), NOW), 'device via home');
  assert.equal(deviceState(d({ viaSelf: true }), NOW), 'device via this node; no handshake yet');
  assert.equal(
    deviceState(d({ viaSelf: true, endpoint: '198.51.100.7:51820', lastHandshake: '2026-11-26T11:59:50Z', txBytes: 5, rxBytes: 6 }), NOW),
    'device via this node; 198.51.100.7:51820 handshake 10s ago, tx 5 rx 6',
  );
  assert.ok(!deviceState(d({ gateway: 'evil\u001b[2J' }), NOW).includes('\u001b'), 'names from the map are made terminal-safe');
  const s = { self: null, peers: [], health: [], devices: [d({})] } as unknown as Status;
  assert.equal(formatStatus(s, { self: true, peers: true, activeOnly: false }, NOW), '100.64.0.9  phone  wireguard  device via home\n');
});
