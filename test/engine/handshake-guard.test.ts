// The handshake's DoS guard, through the device on a fake clock: the flood
// guard (past a number of handshakes per second, MAC2 is demanded), MAC2 bound
// to the exact source address and port its cookie was sent to, and the
// per-source rate limiter (wireguard-go's: 20 per second, burst 5) that keeps
// one source with a valid cookie from costing unbounded Diffie-Hellman work.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../src/engine/clock.js';
import type { Device, DeviceOptions } from '../../src/engine/device/device.js';
import { DEFAULT_TIMERS, UNDER_LOAD_AFTER_MS } from '../../src/engine/device/constants.js';
import type { Endpoint } from '../../src/engine/conn/endpoint.js';
import { memDevice, runNet } from '../helpers/mem-device.js';
import { MemNet, ipv4Packet, type Datagram } from '../helpers/memnet.js';

const MSG_INITIATION = 1;
const MSG_COOKIE_REPLY = 3;
/** wireguard-go's limiter, as ratelimit.ts keeps it */
const BURST_PACKETS = 5;
const PACKETS_PER_SECOND = 20;

const node = memDevice;

const run = runNet;

/** A (192.0.2.1) knows B's endpoint; B runs with `optsB`. Every datagram in flight is recorded in `seen`. */
async function pair(optsB: DeviceOptions) {
  const net = new MemNet();
  const clock = new FakeClock();
  const a = await node(net, clock, '192.0.2.1');
  const b = await node(net, clock, '192.0.2.2', optsB);
  await addPeer(a.dev, b.pub, '10.0.0.2', { address: '192.0.2.2', port: b.port });
  await addPeer(b.dev, a.pub, '10.0.0.1');
  const seen: Datagram[] = [];
  net.filter = (d) => (seen.push({ ...d, buf: Buffer.from(d.buf) }), true);
  return { net, clock, a, b, seen };
}

/** `on` learns `peer` (inner `inner`/32), with `endpoint` if given. */
async function addPeer(on: Device, peer: Buffer, inner: string, endpoint?: Endpoint): Promise<void> {
  const allowedIps = [{ address: inner, bits: 32, family: 4 as const }];
  const p = { publicKey: peer, remove: false, updateOnly: false, ...(endpoint ? { endpoint } : {}), replaceAllowedIps: true, allowedIps };
  await on.applySet({ replacePeers: false, peers: [p] });
}

const initiations = (seen: Datagram[]) => seen.filter((d) => d.buf[0] === MSG_INITIATION && d.buf.length === 148);
const cookieRepliesTo = (seen: Datagram[], ep: Endpoint) =>
  seen.filter((d) => d.buf[0] === MSG_COOKIE_REPLY && d.dst.address === ep.address && d.dst.port === ep.port);

/** Under load at B: A's initiation, B's cookie reply, A's retry with MAC2 for its source; returns that retry. */
async function cookieRound() {
  const p = await pair({ underLoadHandshakesPerSecond: 0 });
  p.a.dev.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', 40));
  p.net.pump();
  run(p.net, p.clock, DEFAULT_TIMERS.rekeyTimeoutMs + DEFAULT_TIMERS.rekeyTimeoutJitterMaxMs);
  assert.equal(p.b.received.length, 1, 'the cookie round completed the handshake');
  const withMac2 = initiations(p.seen).at(-1)!;
  assert.ok(
    withMac2.buf.subarray(132, 148).some((x) => x !== 0),
    'the retry carries MAC2',
  );
  return { ...p, withMac2 };
}

test('MAC2 is bound to the source it was issued for: the same initiation from another address or port gets a cookie reply, not a handshake', async () => {
  const { net, b, withMac2, seen } = await cookieRound();
  const required = b.dev.stats.dropped.cookieRequired;
  // staleTimestamp counts initiations that got through the guard to the DH and were refused after it, as replays
  const dh = b.dev.stats.dropped.staleTimestamp;
  // from its own source, MAC2 holds: the message reaches the handshake (where its old timestamp refuses it as a replay)
  b.dev.receiveDatagram(Buffer.from(withMac2.buf), withMac2.src);
  net.pump();
  assert.equal(b.dev.stats.dropped.cookieRequired, required, 'MAC2 accepted from the source it was made for');
  for (const other of [
    { address: '198.51.100.7', port: withMac2.src.port },
    { address: withMac2.src.address, port: withMac2.src.port + 1 },
  ]) {
    const before = b.dev.stats.dropped.cookieRequired;
    const replies = cookieRepliesTo(seen, other).length;
    b.dev.receiveDatagram(Buffer.from(withMac2.buf), other);
    net.pump();
    assert.equal(b.dev.stats.dropped.cookieRequired, before + 1, `MAC2 refused from ${other.address}:${other.port}`);
    assert.equal(cookieRepliesTo(seen, other).length, replies + 1, 'a cookie reply goes to the claimed source instead');
  }
  assert.equal(b.dev.stats.dropped.staleTimestamp, dh + 1, 'only the message from the right source cost a handshake attempt');
});

test('per-source rate limit under load: a burst of 5 handshakes, then 20 a second; another source is not affected', async () => {
  const { net, clock, b, withMac2 } = await cookieRound();
  clock.advance(1000); // the source's bucket is full again
  const limited = b.dev.stats.dropped.rateLimited;
  const sent = 20;
  for (let i = 0; i < sent; i++) b.dev.receiveDatagram(Buffer.from(withMac2.buf), withMac2.src);
  net.pump();
  assert.equal(b.dev.stats.dropped.rateLimited - limited, sent - BURST_PACKETS, 'all but the burst refused before any DH');
  // the bucket refills at 20 a second: 100 ms later one more is let through, and only one
  clock.advance(1000 / PACKETS_PER_SECOND);
  const l2 = b.dev.stats.dropped.rateLimited;
  b.dev.receiveDatagram(Buffer.from(withMac2.buf), withMac2.src);
  b.dev.receiveDatagram(Buffer.from(withMac2.buf), withMac2.src);
  assert.equal(b.dev.stats.dropped.rateLimited - l2, 1);
  // a third node, from its own address, completes its handshake through the same cookie round while A's source is limited
  const c = await node(net, clock, '192.0.2.3');
  await addPeer(c.dev, b.pub, '10.0.0.2', { address: '192.0.2.2', port: b.port });
  await addPeer(b.dev, c.pub, '10.0.0.3');
  for (let i = 0; i < sent; i++) b.dev.receiveDatagram(Buffer.from(withMac2.buf), withMac2.src);
  const before = b.received.length;
  c.dev.sendPacket(ipv4Packet('10.0.0.3', '10.0.0.2', 40));
  net.pump();
  run(net, clock, DEFAULT_TIMERS.rekeyTimeoutMs + DEFAULT_TIMERS.rekeyTimeoutJitterMaxMs);
  assert.equal(b.received.length, before + 1, 'the other source got its handshake');
});

test('flood guard: under the handshakes-per-second threshold no cookie is demanded; past it MAC2 is, until the load is gone a second', async () => {
  const threshold = 3;
  const { net, clock, a, b, seen } = await pair({ underLoadHandshakesPerSecond: threshold });
  // A's first initiation, without MAC2 (B never sent a cookie): the message the flood replays
  a.dev.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', 40));
  net.pump();
  assert.equal(b.received.length, 1, 'not under load: the handshake went through without a cookie');
  const init = initiations(seen)[0]!;
  assert.ok(
    init.buf.subarray(132, 148).every((x) => x === 0),
    'no MAC2',
  );
  const spoofed = (i: number): Endpoint => ({ address: `203.0.113.${1 + (i % 200)}`, port: 1000 + i });
  clock.advance(1000); // a fresh one-second window
  const required = b.dev.stats.dropped.cookieRequired;
  const dh = b.dev.stats.dropped.staleTimestamp;
  for (let i = 0; i < threshold; i++) b.dev.receiveDatagram(Buffer.from(init.buf), spoofed(i));
  assert.equal(b.dev.stats.dropped.cookieRequired, required, `${threshold} handshakes in a second: no cookie demanded`);
  assert.equal(b.dev.stats.dropped.staleTimestamp, dh + threshold, 'each reached the handshake (refused there as a replay)');
  const flood = 50;
  for (let i = threshold; i < threshold + flood; i++) b.dev.receiveDatagram(Buffer.from(init.buf), spoofed(i));
  assert.equal(b.dev.stats.dropped.cookieRequired, required + flood, 'past the threshold every message without MAC2 is answered with a cookie only');
  assert.equal(b.dev.stats.dropped.staleTimestamp, dh + threshold, 'and costs no Diffie-Hellman');
  assert.equal(cookieRepliesTo(net.queue, spoofed(threshold)).length, 1, 'the cookie reply goes to the claimed source');
  net.pump();
  // the load ends: UNDER_LOAD_AFTER_MS later, and in a new window, no cookie is demanded again
  clock.advance(UNDER_LOAD_AFTER_MS + 1000);
  const r2 = b.dev.stats.dropped.cookieRequired;
  b.dev.receiveDatagram(Buffer.from(init.buf), spoofed(999));
  assert.equal(b.dev.stats.dropped.cookieRequired, r2, 'no longer under load');
});
