// The per-packet field helpers must read and write exactly what Buffer's own
// methods do, at every offset and across the sign bit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { getU16be, getU16le, getU32le, putU32le, zeroRange } from '../../src/util/bytes.js';

test('32-bit little-endian and 16-bit fields match Buffer', () => {
  const edge = [0, 1, 0x7f, 0x80, 0xff, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, 0xffff_ffff];
  for (let i = 0; i < 3000; i++) {
    const b = randomBytes(24);
    const o = randomInt(0, 20);
    assert.equal(getU32le(b, o), b.readUInt32LE(o));
    assert.equal(getU16be(b, o), b.readUInt16BE(o));
    assert.equal(getU16le(b, o), b.readUInt16LE(o));
    const v = i < edge.length ? edge[i]! : randomInt(0, 2 ** 32);
    const mine = Buffer.from(b);
    const ref = Buffer.from(b);
    putU32le(mine, o, v);
    ref.writeUInt32LE(v, o);
    assert.ok(mine.equals(ref), `putU32le(${v}) at ${o}`);
    assert.equal(getU32le(mine, o), v);
  }
});

test('zeroRange zeroes exactly [from, to)', () => {
  const b = Buffer.alloc(32, 0xaa);
  zeroRange(b, 5, 20);
  for (let i = 0; i < 32; i++) assert.equal(b[i], i >= 5 && i < 20 ? 0 : 0xaa, `byte ${i}`);
  zeroRange(b, 7, 7);
  assert.equal(b[4], 0xaa);
});
