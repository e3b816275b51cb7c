// The daemon's relay packet totals (RelayManager.frameCounts, read by
// meshctl_daemon_relay_packets_total) never go down when a region's client is
// dropped: its counts are kept. A real relay on loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RelayManager } from '../../src/daemon/relays.js';
import { generatePrivateKey } from '../../src/crypto/x25519.js';
import { client, relay, until } from '../relay/harness.js';

test('relay packet totals survive the region being dropped', async () => {
  const R = await relay();
  const other = client(R.url, { fingerprint: R.r.fingerprint });
  const region = { code: 'test', url: R.url, stunPort: 0, certFingerprint: R.r.fingerprint };
  const mgr = new RelayManager(
    generatePrivateKey(),
    () => {},
    () => {},
  );
  try {
    await until(() => other.c.connected, 5000, 'the other client connected');
    mgr.update([region], new Set(['test']));
    await until(() => mgr.connected('test'), 5000, 'the manager connected');
    // `sent` counts every frame, the client's latency pings too: compare against the count before
    const before = mgr.frameCounts().sent;
    for (let i = 0; i < 4; i++) assert.ok(mgr.send('test', other.pub, Buffer.from(`p${i}`)));
    await until(() => other.got.length === 4, 5000, 'four packets through the relay');
    assert.equal(mgr.frameCounts().sent, before + 4);
    mgr.update([region], new Set()); // the region is no longer wanted: its client stops
    assert.equal(mgr.status().length, 0);
    assert.deepEqual(mgr.frameCounts(), { sent: before + 4, received: 0, dropped: 0 }, 'the stopped client still counts');
    mgr.update([region], new Set(['test']));
    await until(() => mgr.connected('test'), 5000, 'connected again');
    const again = mgr.frameCounts().sent;
    assert.ok(again >= before + 4, 'the new client adds to the total');
    assert.ok(mgr.send('test', other.pub, Buffer.from('again')));
    assert.equal(mgr.frameCounts().sent, again + 1);
  } finally {
    mgr.stop();
    other.c.stop();
    await R.close();
  }
});
