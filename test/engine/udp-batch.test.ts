// Batched sends (sendmmsg through koffi) on loopback: every datagram arrives,
// in order, with its bytes, for IPv4 and IPv6, and oversized ones still go out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { UdpBind } from '../../src/engine/udp.js';
import { MMSG_SLOT, MmsgBatch } from '../../src/engine/mmsg.js';
import { udpHandle } from '../../src/engine/udp-reader.js';

async function receiver(type: 'udp4' | 'udp6', host: string) {
  const s = dgram.createSocket(type);
  const got: Buffer[] = [];
  await new Promise<void>((r) => s.bind(0, host, () => r()));
  s.on('message', (m) => got.push(m));
  return { s, got, port: s.address().port };
}

for (const [type, host] of [
  ['udp4', '127.0.0.1'],
  ['udp6', '::1'],
] as const) {
  test(`a batch of 150 datagrams over ${type} arrives whole and in order`, async (t) => {
    const bind = new UdpBind();
    await bind.open(0, () => {});
    let r;
    try {
      r = await receiver(type, host);
    } catch {
      await bind.close();
      return t.skip(`no ${type} loopback here`);
    }
    try {
      const sent = Array.from({ length: 150 }, (_, i) => randomBytes(i === 70 ? MMSG_SLOT + 100 : 100 + (i % 1300)));
      bind.beginBatch();
      for (const b of sent) assert.ok(bind.send(b, { address: host, port: r.port }));
      bind.flushBatch();
      for (let i = 0; i < 100 && r.got.length < sent.length; i++) await new Promise((res) => setTimeout(res, 10));
      assert.equal(r.got.length, sent.length);
      const key = (b: Buffer) => b.toString('hex');
      // the oversized one takes the ordinary path and may overtake the batch; the rest keep their order
      assert.deepEqual(new Set(r.got.map(key)), new Set(sent.map(key)));
      const inBatch = sent.filter((b) => b.length <= MMSG_SLOT).map(key);
      assert.deepEqual(r.got.map(key).filter((k) => inBatch.includes(k)), inBatch);
      assert.ok(bind.batchedSends >= 3, `sendmmsg used (${bind.batchedSends} batches)`);
      assert.equal(bind.batchedDatagrams, 149, 'the kernel took every batched datagram through sendmmsg');
    } finally {
      r.s.close();
      await bind.close();
    }
  });
}

test('what the kernel does not take stays queued in order, with its endpoints; a full send leaves nothing behind', async (t) => {
  const r = await receiver('udp4', '127.0.0.1');
  t.after(() => r.s.close());
  const b = MmsgBatch.create(4);
  if (!b) return t.skip('no sendmmsg on this platform');
  const ep = { address: '127.0.0.1', port: r.port };
  const other = { address: '127.0.0.2', port: 9 };
  const dgs = [Buffer.from('one'), Buffer.from('two'), Buffer.from('three')];
  assert.ok(b.add(dgs[0]!, ep) && b.add(dgs[1]!, other) && b.add(dgs[2]!, ep));
  assert.equal(b.flush(-1), 0); // no socket: the kernel took nothing
  assert.deepEqual([b.taken, b.queued], [0, 3]);
  assert.deepEqual(b.bufs.slice(0, 3), dgs);
  assert.deepEqual(b.eps.slice(0, 3), [ep, other, ep]);
  b.clear();
  assert.ok(b.bufs.every((x) => x.length === 0), 'no datagram is kept alive after clear');

  const s = dgram.createSocket('udp4');
  await new Promise<void>((res) => s.bind(0, '127.0.0.1', () => res()));
  t.after(() => s.close());
  const fd = udpHandle(s)?.fd ?? -1;
  assert.ok(fd >= 0);
  assert.ok(b.add(dgs[0]!, ep) && b.add(dgs[2]!, ep));
  assert.equal(b.flush(fd), 2);
  assert.deepEqual([b.taken, b.queued], [2, 2]);
  for (let i = 0; i < 50 && r.got.length < 2; i++) await new Promise((res) => setTimeout(res, 10));
  assert.deepEqual(r.got.map(String), ['one', 'three']);
});
