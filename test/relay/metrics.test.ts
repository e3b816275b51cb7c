// The relay's metrics (src/relay/metrics.ts) against a real relay on loopback:
// clients, packets and bytes forwarded, drops by reason, STUN requests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { relayMetrics } from '../../src/relay/metrics.js';
import { bindingRequest } from '../../src/nat/stun.js';
import { generatePrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';
import { client, relay, until } from './harness.js';
import { parseExposition, seriesKey } from '../helpers/prom-text.js';

test('relay metrics: clients connected, packets and bytes forwarded, drops by reason, STUN requests', async () => {
  const R = await relay();
  const m = relayMetrics(R.r);
  const a = client(R.url, { fingerprint: R.r.fingerprint });
  const b = client(R.url, { fingerprint: R.r.fingerprint });
  const udp = createSocket('udp4');
  try {
    await until(() => a.c.connected && b.c.connected, 5000, 'both connected');
    for (let i = 0; i < 3; i++) assert.ok(a.c.send(b.pub, Buffer.alloc(100, i)));
    await until(() => b.got.length === 3, 5000, 'three packets');
    a.c.send(publicKeyOf(generatePrivateKey()), Buffer.from('x'));
    await until(() => R.r.stats.dropped.noSuchPeer === 1, 5000, 'the drop');
    udp.send(bindingRequest().packet, R.r.stunPort, '127.0.0.1');
    udp.send(Buffer.from('not stun'), R.r.stunPort, '127.0.0.1');
    await until(() => (R.r.stunStats?.requests ?? 0) === 1 && (R.r.stunStats?.malformed ?? 0) === 1, 5000, 'STUN counted');

    const e = parseExposition(await m.metrics());
    const at = (name: string, labels?: Record<string, string>): number | undefined => e.samples.get(seriesKey(name, labels));
    assert.equal(at('meshctl_relay_clients'), 2);
    assert.equal(at('meshctl_relay_forwarded_packets_total', { to: 'local' }), 3);
    assert.equal(at('meshctl_relay_forwarded_packets_total', { to: 'mesh' }), 0);
    assert.equal(at('meshctl_relay_forwarded_bytes_total', { to: 'local' }), 300);
    assert.equal(at('meshctl_relay_dropped_packets_total', { reason: 'no_such_peer' }), 1);
    assert.equal(at('meshctl_relay_dropped_packets_total', { reason: 'queue_full' }), 0);
    assert.equal(at('meshctl_relay_stun_requests_total', { result: 'answered' }), 1);
    assert.equal(at('meshctl_relay_stun_requests_total', { result: 'malformed' }), 1);
    for (const [name, type] of e.types) {
      assert.match(name, /^meshctl_relay_/);
      if (type === 'counter') assert.match(name, /_total$/);
    }

    b.c.stop();
    await until(() => R.r.stats.clients === 1, 5000, 'b gone');
    assert.equal(parseExposition(await m.metrics()).samples.get(seriesKey('meshctl_relay_clients')), 1);
  } finally {
    udp.close();
    a.c.stop();
    b.c.stop();
    await R.close();
  }
});
