// UDP GSO on send (src/engine/conn/mmsg.ts) on loopback: runs of same-size
// datagrams to one destination leave as one UDP_SEGMENT message each, and a
// plain receiver (a dgram socket, no UDP_GRO) gets every datagram intact and
// in order; runs split where the rules say; a kernel that refuses GSO loses
// nothing and turns it off; and two engines carry a same-size burst intact.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { UdpBind } from '../../src/engine/conn/udp.js';
import { GSO_MAX_SEGMENTS, MmsgBatch } from '../../src/engine/conn/mmsg.js';
import { udpHandle } from '../../src/engine/conn/udp-reader.js';
import { koffi } from '../../src/util/koffi.js';
import { ipv4Packet, loopbackPair, until } from '../helpers/loopback-pair.js';
import { skipTest } from '../helpers/ci.js';

/** a WireGuard transport datagram of a full 1420-byte inner packet: 16 header + 1420 + 16 tag */
const FULL = 1452;
/** the receiver must hold a whole burst: the sender's sendmmsg runs on this same event loop */
const RECV_BUFFER_BYTES = 4 * 1024 * 1024;

async function receiver(type: 'udp4' | 'udp6', host: string) {
  const s = dgram.createSocket({ type, recvBufferSize: RECV_BUFFER_BYTES });
  const got: Buffer[] = [];
  await new Promise<void>((r, j) => {
    s.once('error', j);
    s.bind(0, host, () => r());
  });
  s.on('message', (m) => got.push(m));
  return { s, got, ep: { address: host, port: s.address().port } };
}

/** A receiver on `host`, or a skip when the host has no such loopback (IPv6 disabled). */
async function receiverOrSkip(t: TestContext, type: 'udp4' | 'udp6', host: string) {
  try {
    return await receiver(type, host);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EADDRNOTAVAIL' && code !== 'EAFNOSUPPORT') throw err;
    skipTest(t, `the ${type} GSO test`, `no ${type} loopback here (${code})`);
    return null;
  }
}

const hex = (bs: Buffer[]): string[] => bs.map((b) => b.toString('hex'));

for (const [type, host] of [
  ['udp4', '127.0.0.1'],
  ['udp6', '::1'],
] as const) {
  test(`a burst of same-size datagrams over ${type} leaves in a few GSO messages and arrives whole and in order`, async (t) => {
    const r = await receiverOrSkip(t, type, host);
    if (!r) return;
    t.after(() => r.s.close());
    const burst = async (gso: boolean) => {
      const bind = new UdpBind(() => {}, { gso });
      await bind.open(0, () => {});
      try {
        r.got.length = 0;
        // the last of each 50 is shorter, as a TSO super-packet's last segment
        const sent = Array.from({ length: 150 }, (_, i) => randomBytes(i % 50 === 49 ? 700 : FULL));
        bind.beginBatch();
        for (const b of sent) assert.ok(bind.send(b, r.ep));
        bind.flushBatch();
        await until(() => r.got.length >= sent.length);
        assert.deepEqual(hex(r.got), hex(sent), 'every datagram, intact, in order');
        assert.equal(bind.batchedDatagrams, sent.length);
        return bind.sendStats;
      } finally {
        await bind.close();
      }
    };
    const on = await burst(true);
    const off = await burst(false);
    // batches of 64, 64 and 22; a GSO message ends at 45 of 1,452 bytes (65,507 bytes) and after a shorter datagram:
    // [0-44] [45-49] [50-63] | [64-99] [100-127] | [128-149]
    assert.deepEqual(
      { gso: on.gso, gsoSends: on.gsoSends, gsoSegments: on.gsoSegments, gsoRefused: on.gsoRefused },
      { gso: true, gsoSends: 6, gsoSegments: 150, gsoRefused: 0 },
    );
    assert.deepEqual({ gso: off.gso, gsoSends: off.gsoSends, gsoSegments: off.gsoSegments }, { gso: false, gsoSends: 0, gsoSegments: 0 });
    assert.equal(on.calls, off.calls, 'one sendmmsg per batch either way: GSO cuts the messages inside it, 150 → 6');
  });
}

test('runs split at a new destination, a longer datagram, after a shorter one and at the segment limit', async (t) => {
  const a = await receiver('udp4', '127.0.0.1');
  const b = await receiver('udp4', '127.0.0.1');
  t.after(() => (a.s.close(), b.s.close()));
  const batch = MmsgBatch.create(4);
  if (!batch) return skipTest(t, 'the GSO test', 'no sendmmsg on this platform');
  const s = dgram.createSocket('udp4');
  await new Promise<void>((res) => s.bind(0, '127.0.0.1', () => res()));
  t.after(() => s.close());
  const fd = udpHandle(s)?.fd ?? -1;
  const plan: [typeof a, number, number][] = [
    [a, 10, 1000], // run 1: ten of 1,000
    [a, 1, 500], //   … and a shorter last one: 11 segments
    [a, 5, 1000], //  run 2: a new run after the shorter one
    [a, 3, 1200], //  run 3: longer than the run's size
    [b, 1, 800], //   alone: another destination
    [a, 4, 1200], //  run 4: back to a, a new run
  ];
  const sent = new Map([
    [a, [] as Buffer[]],
    [b, [] as Buffer[]],
  ]);
  for (const [r, n, size] of plan) {
    for (let i = 0; i < n; i++) {
      const d = randomBytes(size);
      sent.get(r)!.push(d);
      assert.ok(batch.add(d, r.ep));
    }
  }
  assert.equal(batch.flush(fd), 24);
  assert.deepEqual([batch.gsoSends, batch.gsoSegments, batch.sendCalls], [4, 23, 1]);
  await until(() => a.got.length >= 23 && b.got.length >= 1);
  assert.deepEqual(hex(a.got), hex(sent.get(a)!));
  assert.deepEqual(hex(b.got), hex(sent.get(b)!));
  batch.clear();

  // 64 small datagrams to one destination: one message of GSO_MAX_SEGMENTS, never more
  a.got.length = 0;
  const small = Array.from({ length: 64 }, () => randomBytes(100));
  for (const d of small) assert.ok(batch.add(d, a.ep));
  assert.equal(batch.flush(fd), 64);
  assert.equal(GSO_MAX_SEGMENTS, 64);
  assert.deepEqual([batch.gsoSends, batch.gsoSegments], [5, 23 + 64]);
  await until(() => a.got.length >= 64);
  assert.deepEqual(hex(a.got), hex(small));
});

/** SO_NO_CHECK: the socket sends without UDP checksums, which the kernel's UDP GSO refuses (EINVAL). */
function refuseGso(s: dgram.Socket): void {
  const setsockopt = koffi.load('libc.so.6').func('int setsockopt(int, int, int, void *, uint32)') as (
    fd: number,
    level: number,
    name: number,
    v: Buffer,
    len: number,
  ) => number;
  const one = Buffer.alloc(4);
  one.writeInt32LE(1);
  assert.equal(setsockopt(udpHandle(s)?.fd ?? -1, 1 /* SOL_SOCKET */, 11 /* SO_NO_CHECK */, one, 4), 0);
}

/** A loopback receiver, a batch and a bound sending socket, closed after the test; null where sendmmsg is missing. */
async function sendingSetup(t: TestContext): Promise<{ r: Awaited<ReturnType<typeof receiver>>; batch: MmsgBatch; s: dgram.Socket } | null> {
  const r = await receiver('udp4', '127.0.0.1');
  t.after(() => r.s.close());
  const batch = MmsgBatch.create(4);
  if (!batch) return null;
  const s = dgram.createSocket('udp4');
  await new Promise<void>((res) => s.bind(0, '127.0.0.1', () => res()));
  t.after(() => s.close());
  return { r, batch, s };
}

test('a kernel that refuses the first GSO message: every datagram still arrives in order, and GSO is off for good', async (t) => {
  const setup = await sendingSetup(t);
  if (!setup) return skipTest(t, 'the GSO test', 'no sendmmsg on this platform');
  const { r, batch, s } = setup;
  refuseGso(s);
  const fd = udpHandle(s)?.fd ?? -1;
  const sent = Array.from({ length: 40 }, (_, i) => randomBytes(i < 30 ? FULL : 300));
  for (const d of sent) assert.ok(batch.add(d, r.ep));
  assert.equal(batch.flush(fd), 40, 'the refused run was sent again, one datagram per message');
  assert.equal(batch.gso, false);
  assert.match(batch.gsoOffReason ?? '', /errno 22/);
  assert.deepEqual([batch.gsoRefused, batch.gsoSends], [1, 0]);
  await until(() => r.got.length >= 40);
  assert.deepEqual(hex(r.got), hex(sent));
  batch.clear();

  // later batches go out plainly without trying again
  const calls = batch.sendCalls;
  for (const d of sent) assert.ok(batch.add(d, r.ep));
  assert.equal(batch.flush(fd), 40);
  assert.deepEqual([batch.sendCalls - calls, batch.gsoRefused], [1, 1]);
  await until(() => r.got.length >= 80);
  assert.deepEqual(hex(r.got.slice(40)), hex(sent));
});

test('a refusal after GSO worked marks that destination only; its run is sent again and nothing is lost', async (t) => {
  const setup = await sendingSetup(t);
  if (!setup) return skipTest(t, 'the GSO test', 'no sendmmsg on this platform');
  const { r, batch, s } = setup;
  const fd = udpHandle(s)?.fd ?? -1;
  const sent = Array.from({ length: 20 }, () => randomBytes(FULL));
  for (const d of sent) assert.ok(batch.add(d, r.ep));
  assert.equal(batch.flush(fd), 20);
  assert.equal(batch.gsoSends, 1);
  batch.clear();
  refuseGso(s); // as a destination whose route's MTU is below the segment size would
  for (const d of sent) assert.ok(batch.add(d, r.ep));
  assert.equal(batch.flush(fd), 20);
  assert.deepEqual([batch.gso, batch.gsoRefused, batch.gsoSends], [true, 1, 1]);
  batch.clear();
  const calls = batch.sendCalls;
  for (const d of sent) assert.ok(batch.add(d, r.ep));
  assert.equal(batch.flush(fd), 20);
  assert.deepEqual([batch.sendCalls - calls, batch.gsoRefused], [1, 1], 'the marked destination is not tried again');
  await until(() => r.got.length >= 60);
  assert.deepEqual(hex(r.got), hex([...sent, ...sent, ...sent]));
});

test('two engines: a burst of full-size packets leaves in GSO messages and decrypts whole and in order', async (t) => {
  const pair = await loopbackPair();
  t.after(() => pair.close());
  const { devs, binds, received, inner } = pair;
  devs[0].sendPackets([ipv4Packet(inner[0], inner[1], 30)]); // waits for the handshake
  await until(() => received[1].length === 1);
  const sent: Buffer[] = [];
  for (let round = 0; round < 4; round++) {
    const burst = Array.from({ length: 48 }, (_, k) => ipv4Packet(inner[0], inner[1], k === 47 ? 600 : 1400, (round * 48 + k) & 0xff));
    sent.push(...burst);
    devs[0].sendPackets(burst);
    await until(() => received[1].length === 1 + sent.length);
  }
  assert.ok(
    received[1].slice(1).every((p, k) => p.equals(sent[k]!)),
    'every packet, intact, in order',
  );
  const st = binds[0].sendStats;
  assert.ok(st.gso && st.gsoSends >= 4 && st.gsoSegments >= 4 * 40, `GSO used: ${JSON.stringify(st)}`);
});
