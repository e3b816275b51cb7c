// Relays over IPv6: the relay map's IPv6 address (the control server's
// --relay flag and its config file; the node's map parser in
// test/netmap/parse.test.ts) and a client that
// reaches the relay at that address when the URL's host refuses it. Real TLS
// on loopback (127.0.0.1 and ::1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { RelayClient } from '../../src/relay/client.js';
import { RelayServer } from '../../src/relay/server.js';
import { generatePrivateKey } from '../../src/crypto/x25519.js';
import { relayArg } from '../../src/cli/control.js';
import { loadControlConfig } from '../../src/control/config.js';

test('--relay: an IPv6 literal URL, and ipv6= beside an IPv4 URL, canonical; bad addresses refused with the form', () => {
  assert.deepEqual(relayArg('east=https://[2001:DB8::3]:443?stun=3478', []), [{ code: 'east', url: 'https://[2001:DB8::3]:443', stunPort: 3478 }]);
  assert.deepEqual(relayArg('east=https://7.0.113.3:443?stun=3479&ipv6=2001:DB8:0:0::3', []), [
    { code: 'east', url: 'https://7.0.113.3:443', stunPort: 3479, ipv6: '2001:db8::3' },
  ]);
  assert.deepEqual(relayArg('east=https://relay.example:443?ipv6=2001:db8::3&stun=1', []), [
    { code: 'east', url: 'https://relay.example:443', stunPort: 1, ipv6: '2001:db8::3' },
  ]);
  for (const bad of [
    'east=https://7.0.113.3:443?ipv6=7.0.113.3',
    'east=https://7.0.113.3:443?ipv6=fe80::1%eth0',
    'east=https://7.0.113.3:443?ipv6=',
    'east=https://[7.0.113.3]:443',
    'east=https://[zz::1]:443',
    'east=https://7.0.113.3:443?stun=0',
    'east=https://7.0.113.3:443?color=red',
  ])
    assert.throws(() => relayArg(bad, []), /CODE=https:\/\/HOST:PORT|not an IPv6 address/, bad);
});

test('control config: a relay’s ipv6 is an IPv6 address, canonical', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-cfg-'));
  try {
    const f = join(dir, 'c.json');
    writeFileSync(f, JSON.stringify({ relays: [{ region: 'home', url: 'https://relay1:443', ipv6: '2001:DB8::2' }] }));
    assert.deepEqual(loadControlConfig(f).relays, [{ code: 'home', url: 'https://relay1:443', stunPort: 3478, ipv6: '2001:db8::2' }]);
    writeFileSync(f, JSON.stringify({ relays: [{ region: 'home', url: 'https://relay1:443', ipv6: '10.0.0.1' }] }));
    assert.throws(() => loadControlConfig(f), /relays\[0\]\.ipv6 must be an IPv6 address/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

async function v6Relay() {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-relay-'));
  const r = new RelayServer({ host: '::1', port: 0, stunPort: 0, region: 'test', stateDir: dir });
  await r.start();
  return { r, close: async () => (await r.stop(), rmSync(dir, { recursive: true, force: true })) };
}

/** A loopback IPv4 port nothing listens on: connections to it are refused at once. */
async function refusedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((res) => s.listen(0, '127.0.0.1', res));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((res) => s.close(() => res()));
  return port;
}

async function until(pred: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('relay client: the URL’s IPv4 host refuses, the relay’s IPv6 address takes the connection at once', async () => {
  const { r, close } = await v6Relay();
  const dead = await refusedPort();
  // the relay's IPv6 port is the URL's port too: the URL names an IPv4 address where nothing listens on it
  const c = new RelayClient({ url: `https://127.0.0.1:${r.boundPort}`, altAddress: '::1', fingerprint: r.fingerprint, nodePrivate: generatePrivateKey() });
  const refused = new RelayClient({ url: `https://127.0.0.1:${dead}`, fingerprint: r.fingerprint, nodePrivate: generatePrivateKey() });
  try {
    const t0 = performance.now();
    c.start();
    await until(() => c.connected);
    assert.equal(c.remoteAddress, `[::1]:${r.boundPort}`);
    assert.ok(performance.now() - t0 < 5000);
    assert.equal(c.stats.reconnects, 0, 'the other address was tried before any backoff');
    // without the IPv6 address the same refusal leaves the client unconnected, backing off
    refused.start();
    await until(() => refused.lastError !== null);
    assert.equal(refused.connected, false);
    assert.match(refused.lastError!, /refused/);
  } finally {
    c.stop();
    refused.stop();
    await close();
  }
});
