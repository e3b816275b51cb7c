import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AllowedIps } from '../../src/engine/device/allowedips.js';
import { ipToBytes } from '../../src/engine/device/ippacket.js';

test('longest prefix wins, IPv4 and IPv6 are separate, host bits are masked', () => {
  const t = new AllowedIps<string>();
  t.insert('0.0.0.0', 0, 'default');
  t.insert('10.0.0.5', 8, 'ten');
  t.insert('10.1.0.0', 16, 'ten-one');
  t.insert('10.1.2.3', 32, 'host');
  t.insert('fd00::', 8, 'ula');
  t.insert('fd00:1::1', 128, 'ula-host');
  assert.equal(t.lookupText('10.1.2.3'), 'host');
  assert.equal(t.lookupText('10.1.2.4'), 'ten-one');
  assert.equal(t.lookupText('10.9.9.9'), 'ten');
  assert.equal(t.lookupText('192.0.2.1'), 'default');
  assert.equal(t.lookupText('fd00:1::1'), 'ula-host');
  assert.equal(t.lookupText('fd00:2::1'), 'ula');
  assert.equal(t.lookupText('2001:db8::1'), undefined);
  assert.deepEqual(t.entriesFor('ten'), [{ address: '10.0.0.0', bits: 8, family: 4 }]);
});

test('re-inserting a prefix moves it; removal keeps the others', () => {
  const t = new AllowedIps<string>();
  t.insert('10.0.0.0', 24, 'a');
  t.insert('10.0.0.0', 24, 'b');
  t.insert('10.0.1.0', 24, 'a');
  assert.equal(t.lookupText('10.0.0.1'), 'b');
  t.removeByValue('a');
  assert.equal(t.lookupText('10.0.1.1'), undefined);
  assert.equal(t.lookupText('10.0.0.1'), 'b');
  assert.equal(t.remove('10.0.0.0', 24, 'a'), false);
  assert.equal(t.remove('10.0.0.0', 24, 'b'), true);
  assert.equal(t.lookupText('10.0.0.1'), undefined);
  assert.throws(() => t.insert('10.0.0.0', 33, 'x'), RangeError);
});

test('matches a linear-scan reference on random prefixes', () => {
  const t = new AllowedIps<number>();
  const ref: { b: Buffer; bits: number; v: number }[] = [];
  const rnd = () => Buffer.from([10, Math.floor(Math.random() * 4), Math.floor(Math.random() * 256), Math.floor(Math.random() * 256)]);
  for (let i = 0; i < 300; i++) {
    const b = rnd();
    const bits = 8 + Math.floor(Math.random() * 25);
    t.insert(`${b[0]}.${b[1]}.${b[2]}.${b[3]}`, bits, i);
    const masked = Buffer.from(b);
    for (let j = bits; j < 32; j++) masked[j >> 3]! &= ~(1 << (7 - (j & 7)));
    const existing = ref.findIndex((r) => r.bits === bits && r.b.equals(masked));
    if (existing >= 0) ref.splice(existing, 1);
    ref.push({ b: masked, bits, v: i });
  }
  const match = (a: Buffer, r: { b: Buffer; bits: number }) => {
    for (let j = 0; j < r.bits; j++) if (((a[j >> 3]! ^ r.b[j >> 3]!) >> (7 - (j & 7))) & 1) return false;
    return true;
  };
  for (let i = 0; i < 5000; i++) {
    const a = rnd();
    let best: { bits: number; v: number } | undefined;
    for (const r of ref) if (match(a, r) && (!best || r.bits > best.bits)) best = r;
    assert.equal(t.lookup(a), best?.v);
  }
  assert.equal(t.lookup(ipToBytes('11.0.0.1')), undefined);
});

test('lookupAt finds an address inside a larger buffer, and refuses one that runs past its end', () => {
  const t = new AllowedIps<string>();
  t.insert('10.1.0.0', 16, 'ten-one');
  t.insert('fd00::', 8, 'ula');
  const pkt = Buffer.alloc(40);
  pkt.set([10, 1, 2, 3], 16);
  assert.equal(t.lookupAt(pkt, 16, 4), 'ten-one');
  assert.equal(t.lookupAt(pkt, 12, 4), undefined); // 0.0.0.0: no route
  pkt[24] = 0xfd;
  assert.equal(t.lookupAt(pkt, 24, 16), 'ula');
  assert.equal(t.lookupAt(pkt, 30, 16), undefined, 'past the end');
  assert.equal(t.lookupAt(pkt, -1, 4), undefined);
  assert.equal(t.lookupAt(pkt, 0, 5), undefined, 'neither IPv4 nor IPv6');
});
