// Short peer ids on relay connections: agreed at the handshake, used both ways,
// tables smaller than the peers in play reuse ids without misnaming a source,
// a client that offers none still works beside them, and ids the relay was
// never told are refused.
import assert from 'node:assert/strict';
import test from 'node:test';
import { generatePrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';
import { FrameType, frame } from '../../src/relay/frames.js';
import { SHORT_IDS_MAX, ShortIdAssigner, ShortIdTable, shortIdBytes } from '../../src/relay/short-ids.js';
import { client, collectFrames, rawHandshake, relay, until } from './harness.js';

test('short ids: assigned round-robin past the table, forgotten definitions are made again, ids outside the table refused', () => {
  const a = new ShortIdAssigner(2);
  assert.deepEqual(a.idFor('k1'), { id: 0, fresh: true });
  assert.deepEqual(a.idFor('k1'), { id: 0, fresh: false });
  assert.deepEqual(a.idFor('k2'), { id: 1, fresh: true });
  assert.deepEqual(a.idFor('k3'), { id: 0, fresh: true }); // k1's slot, reused
  assert.deepEqual(a.idFor('k1'), { id: 1, fresh: true }); // k1 again: defined anew, in k2's slot
  a.forget('k1');
  assert.equal(a.idFor('k1').fresh, true);
  const t = new ShortIdTable<string>(2);
  assert.equal(t.define(1, 'x'), true);
  assert.equal(t.define(2, 'y'), false);
  assert.equal(t.define(-1, 'y'), false);
  assert.equal(t.get(1), 'x');
  assert.equal(t.get(0), undefined);
  assert.equal(t.get(70000), undefined);
});

test('relay clients agree on short ids; packets carry the right source both ways, beside a client that names peers by key', async () => {
  const R = await relay();
  const a = client(R.url, { fingerprint: R.r.fingerprint });
  const b = client(R.url, { fingerprint: R.r.fingerprint });
  const old = client(R.url, { fingerprint: R.r.fingerprint, shortIds: 0 });
  try {
    await until(() => a.c.connected && b.c.connected && old.c.connected, 5000, 'connected');
    assert.equal(a.c.shortIds, SHORT_IDS_MAX);
    assert.equal(old.c.shortIds, 0);
    for (let i = 0; i < 3; i++) {
      assert.ok(a.c.send(b.pub, Buffer.from(`a${i}`)));
      assert.ok(old.c.send(b.pub, Buffer.from(`o${i}`)));
      assert.ok(b.c.send(old.pub, Buffer.from(`b${i}`)));
    }
    await until(() => b.got.length === 6 && old.got.length === 3, 5000, 'delivered');
    for (const g of b.got) assert.deepEqual(g.src, g.pkt.toString().startsWith('a') ? a.pub : old.pub);
    assert.deepEqual(
      old.got.map((g) => [g.src.equals(b.pub), g.pkt.toString()]),
      [0, 1, 2].map((i) => [true, `b${i}`]),
    );
    assert.equal(R.r.stats.packetsRelayed, 9);
    assert.equal(R.r.stats.dropped.malformed, 0);
  } finally {
    for (const x of [a, b, old]) x.c.stop();
    await R.close();
  }
});

test('a table of 2 with 4 senders and 4 destinations: every packet arrives once, named by its real source', async () => {
  const R = await relay();
  const senders = [0, 1, 2, 3].map(() => client(R.url, { fingerprint: R.r.fingerprint, shortIds: 2 }));
  const dests = [0, 1, 2, 3].map(() => client(R.url, { fingerprint: R.r.fingerprint, shortIds: 2 }));
  try {
    await until(() => [...senders, ...dests].every((x) => x.c.connected), 5000, 'connected');
    assert.equal(senders[0]!.c.shortIds, 2);
    for (let round = 0; round < 5; round++)
      for (const [si, s] of senders.entries()) for (const [di, d] of dests.entries()) assert.ok(s.c.send(d.pub, Buffer.from(`${round}:${si}:${di}`)));
    await until(() => dests.every((d) => d.got.length === 20), 5000, 'all delivered');
    for (const [di, d] of dests.entries())
      for (const g of d.got) {
        const [, si, to] = g.pkt.toString().split(':').map(Number);
        assert.equal(to, di);
        assert.deepEqual(g.src, senders[si!]!.pub, `packet ${g.pkt} named the wrong source`);
      }
  } finally {
    for (const x of [...senders, ...dests]) x.c.stop();
    await R.close();
  }
});

test('short-id frames the relay did not agree to, or ids it was never told, are dropped as malformed', async () => {
  const R = await relay();
  const b = client(R.url, { fingerprint: R.r.fingerprint });
  try {
    await until(() => b.c.connected, 5000, 'connected');
    // a raw client that offered no short ids: its short frames are refused
    const s = await rawHandshake(R.r.boundPort, { priv: generatePrivateKey() });
    const frames = collectFrames(s);
    await until(() => frames.some((f) => f.type === FrameType.serverInfo), 5000, 'ServerInfo');
    assert.equal(JSON.parse(frames.find((f) => f.type === FrameType.serverInfo)!.payload.toString()).shortIds, undefined);
    s.write(Buffer.concat([frame(FrameType.peerId, shortIdBytes(0), b.pub), frame(FrameType.sendPacketShort, shortIdBytes(0), Buffer.from('x'))]));
    await until(() => R.r.stats.dropped.malformed === 2, 5000, 'two malformed');
    s.destroy();
    // a client that agreed: an id it never defined, and one outside the table
    const a = client(R.url, { fingerprint: R.r.fingerprint });
    await until(() => a.c.connected, 5000, 'a connected');
    a.c.sendFrame(frame(FrameType.sendPacketShort, shortIdBytes(7), Buffer.from('y')));
    a.c.sendFrame(frame(FrameType.peerId, shortIdBytes(SHORT_IDS_MAX), publicKeyOf(generatePrivateKey())));
    await until(() => R.r.stats.dropped.malformed === 4, 5000, 'four malformed');
    assert.ok(a.c.send(b.pub, Buffer.from('fine')));
    await until(() => b.got.length === 1, 5000, 'delivered');
    assert.equal(b.got[0]!.pkt.toString(), 'fine');
    a.c.stop();
  } finally {
    b.c.stop();
    await R.close();
  }
});
