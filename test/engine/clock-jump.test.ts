// Wall-clock steps against the WireGuard engine: handshake timestamps stay
// above every one sent before (across a step back and across a restart, with
// the floor persisted in the daemon's state dir), and a step either way starts
// no handshakes and stops no timers, which run on the monotonic clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeClock, type Clock } from '../../src/engine/clock.js';
import type { DeviceOptions } from '../../src/engine/device/device.js';
import { tai64n } from '../../src/engine/device/crypto.js';
import { MonotonicTai64n, type TimestampFloorStore } from '../../src/engine/device/tai64n-source.js';
import { StateStore } from '../../src/daemon/state.js';
import { linkPair, memDevice, runNet } from '../helpers/mem-device.js';
import { MemNet, ipv4Packet } from '../helpers/memnet.js';

const HOUR_MS = 3_600_000;

/** `base`'s monotonic time and timers with a wall clock that can be stepped on its own (one node's clock). */
function steppedClock(base: FakeClock): Clock & { offsetMs: number } {
  return {
    offsetMs: 0,
    now: () => base.now(),
    wallNow() {
      return base.wallNow() + this.offsetMs;
    },
    setTimeout: (fn, ms) => base.setTimeout(fn, ms),
    clearTimeout: (h) => base.clearTimeout(h),
  };
}

/** A (10.0.0.1, its own wall clock) ↔ B (10.0.0.2); `aOpts` may carry a floor store, passed as a plain object. */
async function pair(aOpts: Record<string, unknown> = {}) {
  const net = new MemNet();
  const clock = new FakeClock();
  const aClock = steppedClock(clock);
  const a = await memDevice(net, clock, '192.0.2.1', { ...aOpts, clock: aClock } as DeviceOptions);
  const b = await memDevice(net, clock, '192.0.2.2');
  await linkPair(a, b, { replacePeers: true });
  return { net, clock, aClock, a, b };
}

test('a wall clock stepped back an hour: the next handshake still completes with the peer that saw the later timestamp', async () => {
  const { net, clock, aClock, a, b } = await pair();
  a.dev.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', 64));
  net.pump();
  assert.equal(b.received.length, 1);
  assert.equal(a.dev.stats.sessions, 1);

  runNet(net, clock, 1000);
  aClock.offsetMs = -HOUR_MS;
  // A needs a new session now: its keys are made unusable, so the next packet starts a handshake
  a.dev.getPeer(b.pub)!.expireCurrentKeypairs();
  a.dev.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', 64));
  net.pump();
  assert.equal(b.dev.stats.dropped.staleTimestamp, 0, 'B refused the initiation as older than the last one it saw');
  assert.equal(a.dev.stats.sessions, 2);
  assert.equal(b.received.length, 2);
});

test('the timestamp floor persists in the state dir: after a restart with the clock stepped back, handshakes still complete', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-ts-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const floor = new StateStore(dir).timestampFloor();
  const { net, clock, aClock, a, b } = await pair({ timestampFloor: floor });
  a.dev.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', 64));
  net.pump();
  assert.equal(b.received.length, 1);

  runNet(net, clock, 1000);
  // A restarts (a new device, the same key and state dir) with its clock an hour back
  const priv = a.dev.identity()!.privateKey;
  await a.dev.close();
  const net2 = net;
  const a2Clock = steppedClock(clock);
  a2Clock.offsetMs = -HOUR_MS;
  const a2 = await memDevice(net2, clock, '192.0.2.1', { clock: a2Clock, timestampFloor: new StateStore(dir).timestampFloor() } as DeviceOptions);
  a2.dev.setPrivateKey(priv);
  // B keeps its peer: it still holds the last timestamp it took from A
  await linkPair(a2, b, { replacePeers: true, aOnly: true });
  a2.dev.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', 64));
  net2.pump();
  assert.equal(b.dev.stats.dropped.staleTimestamp, 0, 'B refused the restarted node’s initiation as older than the last one it saw');
  assert.equal(b.received.length, 2);
  void aClock;
  await a2.dev.close();
});

test('the floor is written once per reserve of timestamp progress, not per handshake', () => {
  const clock = new FakeClock();
  const saved: Buffer[] = [];
  const store: TimestampFloorStore = { load: () => null, save: (f) => void saved.push(Buffer.from(f)) };
  const ts = new MonotonicTai64n(() => clock.wallNow(), { store, reserveMs: 60_000 });
  let last: Buffer = Buffer.alloc(12);
  // 600 initiations over 10 minutes, with the clock stepped back an hour half-way
  for (let i = 0; i < 600; i++) {
    if (i === 300) clock.stepWall(-HOUR_MS);
    clock.advance(1000);
    const next = ts.next();
    assert.ok(Buffer.compare(next, last) > 0, `timestamp ${i} is not above the one before`);
    assert.ok(Buffer.compare(next, saved.at(-1)!) <= 0, `timestamp ${i} lies above the persisted floor`);
    last = next;
  }
  // the first 300 s of progress take 5 or 6 writes; after the step back the timestamps creep up from the last one
  assert.ok(ts.writes >= 5 && ts.writes <= 7, `${ts.writes} writes`);
});

test('a floor file that is not a timestamp, or lies years ahead, is ignored with one line', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-ts-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const store = new StateStore(dir);
  const logs: string[] = [];
  const now = 1_700_000_000_000;
  writeFileSync(store.timestampFile, 'not hex\n');
  const a = new MonotonicTai64n(() => now, { store: store.timestampFloor(), log: (m) => logs.push(m) });
  assert.match(logs[0]!, /unreadable .*not 24 hex digits/);
  assert.deepEqual(a.next(), tai64n(now));
  writeFileSync(store.timestampFile, `${tai64n(now + 20 * 365 * 24 * HOUR_MS).toString('hex')}\n`);
  const b = new MonotonicTai64n(() => now, { store: store.timestampFloor(), log: (m) => logs.push(m) });
  assert.match(logs[1]!, /years ahead/);
  assert.deepEqual(b.next(), tai64n(now));
  writeFileSync(store.timestampFile, 'x'.repeat(100));
  new MonotonicTai64n(() => now, { store: store.timestampFloor(), log: (m) => logs.push(m) });
  assert.match(logs[2]!, /100 bytes, not a timestamp/);
});

test('a wall clock stepped an hour either way starts no handshakes and stops no timers', async () => {
  const { net, clock, aClock, a, b } = await pair();
  a.dev.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', 64));
  net.pump();
  const before = { initiated: a.dev.stats.handshakes.initiated, sessions: a.dev.stats.sessions + b.dev.stats.sessions };
  // A's keepalives: empty transport messages (32 bytes) from A
  let keepalives = 0;
  net.filter = (d) => {
    if (d.src.address === '192.0.2.1' && d.buf.length === 32) keepalives++;
    return true;
  };
  // 30 s: a packet each second from B to A (A answers with keepalives), the clock stepped +1 h at 10 s and back at 20 s
  for (let s = 0; s < 30; s++) {
    if (s === 10) aClock.offsetMs = HOUR_MS;
    if (s === 20) aClock.offsetMs = 0;
    b.dev.sendPacket(ipv4Packet('10.0.0.2', '10.0.0.1', 64));
    runNet(net, clock, 1000);
  }
  assert.equal(a.dev.stats.handshakes.initiated, before.initiated, 'handshakes started by the steps');
  assert.equal(a.dev.stats.sessions + b.dev.stats.sessions, before.sessions);
  assert.equal(a.received.length, 30);
  // the keepalive timer (10 s after data A did not answer) kept firing through both steps
  assert.ok(keepalives >= 2, `${keepalives} keepalives from A in 30 s`);
  // past REKEY_AFTER_TIME (120 s of monotonic time) A rekeys once, as without the steps
  for (let s = 0; s < 100; s++) {
    a.dev.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', 64));
    runNet(net, clock, 1000);
  }
  assert.equal(a.dev.stats.handshakes.initiated, before.initiated + 1);
});
