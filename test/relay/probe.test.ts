// RelayClient.probe: a relay connection that went silent without closing (the
// network under it changed: a NAT forgot it, the host's address is gone) is
// replaced within the probe's timeout, instead of after the 75 s idle limit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import { client, relay, until } from './harness.js';

/** The probe's timeout in the live-connection test, and how long after the probe it watches (past the timeout). */
const PROBE_MS = 300;
const WATCH_MS = 1500;

/** A TCP proxy on loopback whose existing connections can be made to drop everything, as a dead path does. */
async function blackholeProxy(port: number) {
  const pairs: { a: Socket; b: Socket; dead: boolean }[] = [];
  const srv = createServer((a) => {
    const b = connect(port, '127.0.0.1');
    const pair = { a, b, dead: false };
    pairs.push(pair);
    a.on('data', (d) => pair.dead || b.write(d));
    b.on('data', (d) => pair.dead || a.write(d));
    a.on('error', () => b.destroy());
    b.on('error', () => a.destroy());
    a.on('close', () => b.destroy());
    b.on('close', () => a.destroy());
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as { port: number }).port,
    /** every connection open now stops carrying bytes, and stays open */
    kill: () => pairs.forEach((p) => (p.dead = true)),
    count: () => pairs.length,
    close: () => (pairs.forEach((p) => (p.a.destroy(), p.b.destroy())), new Promise((r) => srv.close(r))),
  };
}

test('a probe of a relay connection that went silent reconnects within its timeout', async () => {
  const r = await relay();
  const proxy = await blackholeProxy(r.r.boundPort);
  const { c } = client(`https://127.0.0.1:${proxy.port}`, { fingerprint: r.r.fingerprint });
  try {
    await until(() => c.connected, 5000, 'connected through the proxy');
    c.probe(1000);
    await new Promise((res) => setTimeout(res, 1300));
    assert.ok(c.connected, 'a live connection answers the probe and is kept');
    assert.equal(proxy.count(), 1);
    proxy.kill();
    const errors: string[] = [];
    const poll = setInterval(() => c.lastError && errors.push(c.lastError), 20);
    c.probe(1000);
    await until(() => proxy.count() === 2 && c.connected, 5000, 'a new connection after the probe went unanswered');
    clearInterval(poll);
    assert.equal(c.stats.reconnects, 1);
    assert.match(errors.join('\n'), /no answer to a probe within 1000 ms/);
  } finally {
    c.stop();
    await proxy.close();
    await r.close();
  }
});

test('a probe of a live relay connection keeps it: no reconnect, no error, packets still flow', async () => {
  const r = await relay();
  const a = client(r.url, { fingerprint: r.r.fingerprint });
  const b = client(r.url, { fingerprint: r.r.fingerprint });
  try {
    await until(() => a.c.connected && b.c.connected, 5000, 'both connected');
    a.c.probe(PROBE_MS);
    // the probe is decided PROBE_MS in (the relay's pong comes within a round trip); watch past it for a wrongly dropped connection
    const started = Date.now();
    await until(() => a.c.lastError !== null || !a.c.connected || Date.now() - started > WATCH_MS, 5000, 'the probe decided');
    assert.equal(a.c.lastError, null, 'a live connection answers the probe and is kept');
    assert.ok(a.c.connected);
    assert.equal(a.c.stats.reconnects, 0);
    assert.ok(a.c.send(b.pub, Buffer.from('after the probe')));
    await until(() => b.got.some((g) => g.pkt.toString() === 'after the probe'), 3000, 'a packet after the probe');
  } finally {
    a.c.stop();
    b.c.stop();
    await r.close();
  }
});
