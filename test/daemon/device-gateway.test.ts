// The gateway side of devices on stock WireGuard, without the engine: which of
// the map's devices this node holds, how they become plain peers, the
// forwarding health lines, and how status shows devices.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { forwardingHealth, gatewayDevices, plainPeersOf } from '../../src/daemon/device-gateway.js';
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

test('a gateway with forwarding off says so, per family, only while it has devices', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fwd-'));
  try {
    const files = { ipv4: join(dir, 'v4'), ipv6: join(dir, 'v6') };
    writeFileSync(files.ipv4, '0\n');
    writeFileSync(files.ipv6, '1\n');
    assert.deepEqual(forwardingHealth(0, files), []);
    const h = forwardingHealth(2, files);
    assert.equal(h.length, 1);
    assert.match(h[0]!, /^IPv4 forwarding is off: the 2 devices behind this gateway reach only this node; .*net\.ipv4\.ip_forward=1/);
    writeFileSync(files.ipv4, '1\n');
    assert.deepEqual(forwardingHealth(1, files), []);
    rmSync(files.ipv6);
    assert.deepEqual(forwardingHealth(1, files), [], 'no IPv6 on the host: nothing to say');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
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
