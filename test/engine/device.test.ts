// The engine's protocol behaviour end to end in memory: two devices on a fake
// clock exchange real WireGuard datagrams through MemNet.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { FakeClock } from '../../src/engine/clock.js';
import type { DeviceOptions } from '../../src/engine/device/device.js';
import { DEFAULT_TIMERS } from '../../src/engine/device/constants.js';
import { linkPair, memDevice, runNet } from '../helpers/mem-device.js';
import { MemNet, ipv4Packet } from '../helpers/memnet.js';

const node = memDevice;

const run = runNet;

/** A ↔ B with inner 10.0.0.1 ↔ 10.0.0.2; only A knows B's endpoint (B learns A's by roaming). */
async function pair(opts: DeviceOptions = {}, optsB: DeviceOptions = opts) {
  const net = new MemNet();
  const clock = new FakeClock();
  const a = await node(net, clock, '192.0.2.1', opts);
  const b = await node(net, clock, '192.0.2.2', optsB);
  await linkPair(a, b);
  return { net, clock, a, b };
}

test('first packet triggers a handshake; data flows both ways; responder learns the endpoint', async () => {
  const { net, a, b } = await pair();
  const p1 = ipv4Packet('10.0.0.1', '10.0.0.2', 100);
  a.dev.sendPacket(p1);
  net.pump();
  assert.equal(b.received.length, 1);
  assert.ok(b.received[0]!.equals(p1));
  const bSeesA = b.dev.getPeer(a.pub)!;
  assert.deepEqual(bSeesA.endpoint, { address: '192.0.2.1', port: a.port });
  const p2 = ipv4Packet('10.0.0.2', '10.0.0.1', 1300);
  b.dev.sendPacket(p2);
  net.pump();
  assert.equal(a.received.length, 1);
  assert.ok(a.received[0]!.equals(p2));
  assert.ok(bSeesA.lastHandshakeWallMs > 0);
  // the handshake counters the metrics read: one initiation by A, one session each side, none given up
  assert.deepEqual(a.dev.stats.handshakes, { initiated: 1, failed: 0, resentOnPath: 0 });
  assert.deepEqual(b.dev.stats.handshakes, { initiated: 0, failed: 0, resentOnPath: 0 });
  assert.equal(a.dev.stats.sessions, 1);
  assert.equal(b.dev.stats.sessions, 1);
});

test('no packet is lost across rekeys while traffic flows continuously', async () => {
  const { net, clock, a, b } = await pair();
  let sent = 0;
  // 400 s of traffic, one packet each way every 250 ms: crosses REKEY_AFTER_TIME three times
  for (let t = 0; t < 400_000; t += 250) {
    a.dev.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', 64, sent & 0xff));
    b.dev.sendPacket(ipv4Packet('10.0.0.2', '10.0.0.1', 64, sent & 0xff));
    sent++;
    net.pump();
    clock.advance(250);
  }
  net.pump();
  assert.equal(b.received.length, sent, 'A→B lost packets');
  assert.equal(a.received.length, sent, 'B→A lost packets');
  const s = { ...a.dev.stats.dropped, ...b.dev.stats.dropped };
  assert.equal(a.dev.stats.dropped.decrypt + b.dev.stats.dropped.decrypt, 0, JSON.stringify(s));
  assert.equal(a.dev.stats.dropped.replay + b.dev.stats.dropped.replay, 0);
  // the point of the test: the traffic crossed rekeys (a handshake at start, then one per REKEY_AFTER_TIME)
  const rekeys = Math.floor(400_000 / DEFAULT_TIMERS.rekeyAfterTimeMs);
  assert.ok(rekeys >= 3, 'the run is long enough to cross REKEY_AFTER_TIME three times');
  for (const [who, n] of [
    ['A', a],
    ['B', b],
  ] as const) {
    assert.ok(n.dev.stats.sessions >= 1 + rekeys, `${who} derived ${n.dev.stats.sessions} sessions: no rekey happened`);
  }
});

test('a replayed transport datagram is dropped and counted', async () => {
  const { net, a, b } = await pair();
  a.dev.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', 50));
  net.pump();
  let captured: Buffer | null = null;
  net.filter = (d) => {
    if (d.buf[0] === 4 && d.buf.length > 32) captured = d.buf;
    return true;
  };
  a.dev.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', 50));
  net.pump();
  assert.ok(captured);
  const before = b.received.length;
  b.dev.receiveDatagram(captured, { address: '192.0.2.1', port: a.port });
  assert.equal(b.received.length, before);
  assert.equal(b.dev.stats.dropped.replay, 1);
});

test('a packet whose inner source is outside the sender’s AllowedIPs is dropped', async () => {
  const { net, a, b } = await pair();
  a.dev.sendPacket(ipv4Packet('10.0.0.99', '10.0.0.2', 40));
  net.pump();
  assert.equal(b.received.length, 0);
  assert.equal(b.dev.stats.dropped.disallowedSource, 1);
});

test('garbage never throws and is counted by reason', async () => {
  const { net, a, b } = await pair();
  a.dev.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', 40));
  net.pump();
  const src = { address: '198.51.100.7', port: 999 };
  for (let i = 0; i < 5000; i++) {
    const len = Math.floor(Math.random() * 300);
    const g = randomBytes(len);
    if (len >= 4 && i % 2 === 0) {
      g[0] = 1 + (i % 4);
      g[1] = g[2] = g[3] = 0;
    }
    b.dev.receiveDatagram(g, src);
  }
  for (const size of [148, 92, 64, 32, 100]) {
    const g = randomBytes(size);
    g[0] = size === 148 ? 1 : size === 92 ? 2 : size === 64 ? 3 : 4;
    g[1] = g[2] = g[3] = 0;
    b.dev.receiveDatagram(g, src);
  }
  const d = b.dev.stats.dropped;
  assert.equal(d.internalError, 0);
  assert.ok(d.short + d.unknownType + d.badSize + d.badMac1 + d.unknownIndex > 2500);
  // the tunnel still works
  a.dev.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', 40));
  net.pump();
  assert.equal(b.received.length, 2);
});

test('under load, an initiation without MAC2 gets a cookie reply, and the retry with the cookie succeeds', async () => {
  const { net, clock, a, b } = await pair({}, { underLoadHandshakesPerSecond: 0 });
  a.dev.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', 40));
  net.pump();
  assert.equal(b.dev.stats.dropped.cookieRequired, 1);
  assert.equal(b.received.length, 0);
  run(net, clock, DEFAULT_TIMERS.rekeyTimeoutMs + DEFAULT_TIMERS.rekeyTimeoutJitterMaxMs);
  assert.equal(b.received.length, 1, 'staged packet delivered after the cookie round');
  assert.equal(b.dev.stats.dropped.cookieRequired, 1);
});

test('a replayed initiation is refused by its timestamp', async () => {
  const { net, b, a } = await pair();
  let init: Buffer | null = null;
  net.filter = (d) => {
    if (d.buf[0] === 1) init = d.buf;
    return true;
  };
  a.dev.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', 40));
  net.pump();
  assert.ok(init);
  b.dev.receiveDatagram(init, { address: '192.0.2.1', port: a.port });
  assert.equal(b.dev.stats.dropped.staleTimestamp, 1);
});

test('roaming: the endpoint follows the source of the last authenticated packet only', async () => {
  const { net, a, b } = await pair();
  a.dev.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', 40));
  net.pump();
  await a.dev.attachBind(net.bind('192.0.2.77'), 51820);
  a.dev.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', 40));
  net.pump();
  assert.deepEqual(b.dev.getPeer(a.pub)!.endpoint, { address: '192.0.2.77', port: 51820 });
  // an unauthenticated datagram from elsewhere moves nothing
  b.dev.receiveDatagram(randomBytes(64), { address: '203.0.113.5', port: 1 });
  assert.deepEqual(b.dev.getPeer(a.pub)!.endpoint, { address: '192.0.2.77', port: 51820 });
});

test('an unanswered initiation is retried every REKEY_TIMEOUT and abandoned after REKEY_ATTEMPT_TIME', async () => {
  const { net, clock, a } = await pair();
  let initiations = 0;
  net.filter = (d) => {
    if (d.buf[0] === 1) initiations++;
    return false;
  };
  a.dev.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', 40));
  net.pump();
  for (let t = 0; t < 200_000; t += 100) {
    clock.advance(100);
    net.pump();
  }
  // 1 + 17 retries within 90 s (wireguard-go's MaxTimerHandshakes), then silence
  assert.ok(initiations >= 17 && initiations <= 19, `saw ${initiations} initiations`);
  assert.equal(a.dev.stats.handshakes.initiated, initiations, 'every initiation sent is counted');
  assert.equal(a.dev.stats.handshakes.failed, 1, 'the give-up is counted once');
  assert.equal(a.dev.stats.sessions, 0);
});

test('a keepalive answers received data when we have nothing to send', async () => {
  const { net, clock, a } = await pair();
  a.dev.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', 40));
  net.pump();
  let keepalives = 0;
  net.filter = (d) => {
    if (d.buf[0] === 4 && d.buf.length === 32 && d.src.address === '192.0.2.2') keepalives++;
    return true;
  };
  clock.advance(DEFAULT_TIMERS.keepaliveTimeoutMs + 10);
  net.pump();
  assert.equal(keepalives, 1);
});

test('persistent keepalive sends every interval while idle', async () => {
  const { net, clock, a } = await pair();
  const before = { n: 0 };
  net.filter = (d) => {
    if (d.src.address === '192.0.2.1') before.n++;
    return true;
  };
  const bPub = a.dev.allPeers()[0]!.publicKey;
  await a.dev.applySet({
    replacePeers: false,
    peers: [{ publicKey: bPub, remove: false, updateOnly: true, persistentKeepaliveSeconds: 5, replaceAllowedIps: false, allowedIps: [] }],
  });
  net.pump();
  for (let i = 0; i < 30; i++) {
    clock.advance(1000);
    net.pump();
  }
  // first keepalive triggers the handshake; then one keepalive per 5 s over 30 s
  assert.ok(before.n >= 6, `only ${before.n} datagrams from A in 30 s`);
});

test('keys older than REJECT_AFTER_TIME are never used: a new handshake comes first', async () => {
  const { net, clock, a, b } = await pair();
  a.dev.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', 40));
  net.pump();
  const first = b.dev.getPeer(a.pub)!.lastHandshakeWallMs;
  run(net, clock, DEFAULT_TIMERS.rejectAfterTimeMs + 1000);
  a.dev.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', 40));
  net.pump();
  assert.equal(b.received.length, 2);
  assert.ok(b.dev.getPeer(a.pub)!.lastHandshakeWallMs > first);
  assert.equal(b.dev.stats.dropped.expired, 0);
});

test('under steady traffic both ways (the coarse clock ticking), sessions are renewed before REJECT_AFTER_TIME and nothing is lost', async () => {
  const { net, clock, a, b } = await pair();
  // the first time each receiver index is seen on a transport message: its keypair existed by then
  const firstSeen = new Map<number, number>();
  let oldest = 0;
  net.filter = (d) => {
    if (d.buf.length >= 32 && d.buf[0] === 4) {
      const idx = d.buf.readUInt32LE(4);
      const seen = firstSeen.get(idx) ?? clock.now();
      firstSeen.set(idx, seen);
      oldest = Math.max(oldest, clock.now() - seen);
    }
    return true;
  };
  const STEP_MS = 50;
  const steps = Math.round((DEFAULT_TIMERS.rejectAfterTimeMs * 2.2) / STEP_MS); // two sessions' lifetimes and more
  for (let i = 0; i < steps; i++) {
    a.dev.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', 40));
    b.dev.sendPacket(ipv4Packet('10.0.0.2', '10.0.0.1', 40));
    clock.advance(STEP_MS);
    net.pump();
  }
  net.pump();
  assert.ok(oldest < DEFAULT_TIMERS.rejectAfterTimeMs, `a key was used ${oldest} ms after its first use`);
  // a session per REKEY_AFTER_TIME, two indices each (one per direction): renewed, and not by spurious timer expiries
  const sessions = Math.ceil((steps * STEP_MS) / DEFAULT_TIMERS.rekeyAfterTimeMs);
  assert.ok(firstSeen.size >= 2 * sessions && firstSeen.size <= 2 * (sessions + 1), `${firstSeen.size} receiver indices for ~${sessions} sessions`);
  assert.equal(a.dev.stats.dropped.expired + b.dev.stats.dropped.expired, 0);
  assert.equal(b.received.length, steps, 'every packet A sent arrived');
  assert.equal(a.received.length, steps, 'every packet B sent arrived');
});

test('removing a peer stops its traffic and its routes', async () => {
  const { net, a, b } = await pair();
  a.dev.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', 40));
  net.pump();
  await a.dev.applySet({ replacePeers: false, peers: [{ publicKey: b.pub, remove: true, updateOnly: false, replaceAllowedIps: false, allowedIps: [] }] });
  a.dev.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', 40));
  net.pump();
  assert.equal(b.received.length, 1);
  assert.equal(a.dev.stats.dropped.noRoute, 1);
  // only the packet that had a peer counts as routed (the daemon's idle detection reads this)
  assert.equal(a.dev.stats.routed, 1);
});

test('a packet staged for the handshake is a copy: the reader may reuse its buffer at once', async () => {
  const { net, a, b } = await pair();
  const readBuffer = ipv4Packet('10.0.0.1', '10.0.0.2', 200);
  const original = Buffer.from(readBuffer);
  a.dev.sendPacket(readBuffer); // no session yet: staged while the handshake runs
  readBuffer.fill(0xee, 20); // the next read overwrites the buffer before the response arrives
  net.pump();
  assert.equal(b.received.length, 1);
  assert.ok(b.received[0]!.equals(original), 'the packet as it was read, not as the buffer is now');
});

test('a transport counter at or past 2^53 - 1 is dropped as expired before any decryption; the real packet still arrives', async () => {
  const { net, a, b } = await pair();
  a.dev.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', 40));
  net.pump();
  assert.equal(b.received.length, 1);
  const p = ipv4Packet('10.0.0.1', '10.0.0.2', 60);
  a.dev.sendPacket(p);
  assert.equal(net.queue.length, 1);
  const real = net.queue.shift()!;
  const forged = (high: number, low: number): Buffer => {
    const f = Buffer.from(real.buf);
    f.writeUInt32LE(low, 8);
    f.writeUInt32LE(high, 12);
    return f;
  };
  // the high word alone past 2^21 (the counter no longer fits a number), then exactly the limit
  for (const f of [forged(2 ** 21, 0), forged(0xffffffff, 0xffffffff), forged(2 ** 21 - 1, 0xffffffff)]) net.queue.push({ ...real, buf: f });
  net.pump();
  assert.equal(b.dev.stats.dropped.expired, 3);
  assert.equal(b.dev.stats.dropped.decrypt, 0, 'rejected before the AEAD');
  assert.equal(b.received.length, 1);
  net.queue.push(real);
  net.pump();
  assert.equal(b.received.length, 2);
  assert.ok(b.received[1]!.equals(p));
});
