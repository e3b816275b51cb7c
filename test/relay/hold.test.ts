// Backpressure through the relay over real TLS on loopback: a receiver that
// falls behind holds its sender (TCP flow control) instead of the relay
// dropping a burst; a receiver that does not drain in time is marked slow and
// nobody waits for it; a client's own send queue toward the relay is bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TLSSocket } from 'node:tls';
import { client, relay, until } from './harness.js';
import type { RelayClient } from '../../src/relay/client.js';
import { queuedBytes } from '../../src/relay/hold.js';

const PACKET_BYTES = 1200;
const sockOf = (c: RelayClient): TLSSocket => (c as unknown as { sock: TLSSocket }).sock;

/** Sends `n` numbered packets to `dst`, waiting (never dropping) whenever the client's send queue is full. */
async function sendAll(from: RelayClient, dst: Buffer, n: number, deadlineMs = 60_000): Promise<void> {
  const t0 = Date.now();
  for (let i = 0; i < n; ) {
    const pkt = Buffer.alloc(PACKET_BYTES, i & 0xff);
    pkt.writeUInt32BE(i, 0);
    if (from.send(dst, pkt)) i++;
    else {
      if (Date.now() - t0 > deadlineMs) throw new Error(`sent ${i} of ${n} within ${deadlineMs} ms`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

test('a receiver that falls behind holds its sender: nothing is dropped, every packet arrives in order', { timeout: 120_000 }, async () => {
  // a hold long enough that the test, not the clock, decides when the receiver reads again
  const R = await relay({ maxHoldMs: 30_000 });
  const a = client(R.url, { fingerprint: R.r.fingerprint });
  const b = client(R.url, { fingerprint: R.r.fingerprint });
  try {
    await until(() => a.c.connected && b.c.connected, 5000, 'both connected');
    sockOf(b.c).pause();
    // far more than the kernel's socket buffers, the relay's queue and the sender's queue hold together
    const n = 40_000;
    const sending = sendAll(a.c, b.pub, n);
    // a relay that drops instead of holding fails below, at the count of drops
    await until(() => R.r.stats.holds?.holds > 0 || R.r.stats.dropped.queueFull > 0, 30_000, 'the relay held the sender');
    sockOf(b.c).resume();
    await sending;
    await until(() => b.got.length === n, 60_000, `all ${n} packets delivered`);
    assert.equal(R.r.stats.dropped.queueFull, 0, 'the relay dropped none');
    for (let i = 0; i < n; i++) if (b.got[i]!.pkt.readUInt32BE(0) !== i) assert.fail(`packet ${i} arrived as ${b.got[i]!.pkt.readUInt32BE(0)}`);
    assert.equal(R.r.stats.holds.slowReceivers, 0);
  } finally {
    a.c.stop();
    b.c.stop();
    await R.close();
  }
});

test('a receiver that does not drain within the hold limit is slow: its sender goes on, its own packets drop at its cap', { timeout: 60_000 }, async () => {
  const R = await relay({ maxHoldMs: 1000 });
  const a = client(R.url, { fingerprint: R.r.fingerprint });
  const stuck = client(R.url, { fingerprint: R.r.fingerprint });
  const other = client(R.url, { fingerprint: R.r.fingerprint });
  try {
    await until(() => a.c.connected && stuck.c.connected && other.c.connected, 5000, 'all connected');
    sockOf(stuck.c).pause();
    // enough to fill the kernel's buffers and the relay's queue for `stuck` (the sender's own queue drops the excess)
    for (let i = 0; i < 20_000; i++) {
      a.c.send(stuck.pub, Buffer.alloc(PACKET_BYTES, 1));
      if (i % 200 === 0) await new Promise((r) => setImmediate(r));
    }
    await until(() => R.r.stats.holds.slowReceivers > 0, 10_000, 'the stuck receiver marked slow');
    // the sender's own queue may still be full of packets for `stuck`: it is offered until taken
    await until(() => a.c.send(other.pub, Buffer.from('still flowing')), 10_000, 'the sender took the packet');
    await until(() => other.got.some((g) => g.pkt.toString() === 'still flowing'), 10_000, 'the other receiver reached');
    await until(() => R.r.stats.dropped.queueFull > 0, 10_000, 'the stuck receiver’s packets dropped at its cap');
  } finally {
    a.c.stop();
    stuck.c.stop();
    other.c.stop();
    await R.close();
  }
});

test('a client toward a relay that does not read drops past its send queue, holding at most that much', { timeout: 60_000 }, async () => {
  // the relay holds the sender for as long as the test runs: nothing it writes is read
  const R = await relay({ maxHoldMs: 60_000 });
  const cap = 64 * 1024;
  const { RelayClient } = await import('../../src/relay/client.js');
  const { generatePrivateKey, publicKeyOf } = await import('../../src/crypto/x25519.js');
  const a = new RelayClient({ url: R.url, fingerprint: R.r.fingerprint, nodePrivate: generatePrivateKey(), sendQueueBytes: cap });
  const bPriv = generatePrivateKey();
  const b = new RelayClient({ url: R.url, fingerprint: R.r.fingerprint, nodePrivate: bPriv });
  a.start();
  b.start();
  try {
    await until(() => a.connected && b.connected, 5000, 'both connected');
    sockOf(b).pause();
    let most = 0;
    for (let i = 0; i < 40_000 && a.stats.queueFull === 0; i++) {
      a.send(publicKeyOf(bPriv), Buffer.alloc(PACKET_BYTES, 2));
      most = Math.max(most, queuedBytes(sockOf(a)));
      if (i % 100 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    assert.ok(a.stats.queueFull > 0, 'the sender dropped once its queue was full');
    assert.ok(most <= cap + PACKET_BYTES + 64, `queued at most the cap and one frame: ${most}`);
  } finally {
    a.stop();
    b.stop();
    await R.close();
  }
});
