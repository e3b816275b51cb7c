// Call-me-maybe's flags: the opened flag round-trips, and a flagged message is
// what an older decoder parses as before (it never reads the version byte).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openBox } from '../../src/crypto/box.js';
import { boxKey } from '../../src/crypto/box.js';
import { generatePrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';
import { decodeBody, DISCO_MAGIC, openDisco, sealDisco } from '../../src/nat/disco.js';

const a = generatePrivateKey();
const b = generatePrivateKey();
const aPub = publicKeyOf(a);
const kAB = boxKey(a, publicKeyOf(b));
const kBA = boxKey(b, aPub);
const endpoints = [
  { address: '7.0.113.11', port: 41641 },
  { address: '192.168.1.2', port: 41641 },
];

/** The opened plaintext body of a sealed disco packet. */
const body = (pkt: Buffer): Buffer => Buffer.from(openBox(kBA, pkt.subarray(DISCO_MAGIC.length + 32))!);

/** How a decoder without flags parsed call-me-maybe: type 3, byte 1 unread, whole 18-byte endpoints after it. */
function legacyCallMeMaybe(b: Buffer): { address: string; port: number }[] | null {
  if (b[0] !== 3 || (b.length - 2) % 18 !== 0) return null;
  const out = [];
  for (let off = 2; off < b.length; off += 18) out.push({ address: [...b.subarray(off + 12, off + 16)].join('.'), port: b.readUInt16BE(off + 16) });
  return out;
}

test('call-me-maybe carries the opened flag; without it the message is as before', () => {
  const flagged = sealDisco({ type: 'callMeMaybe', endpoints, opened: true }, aPub, kAB);
  assert.deepEqual(openDisco(flagged, kBA), { type: 'callMeMaybe', endpoints, opened: true });
  const plain = sealDisco({ type: 'callMeMaybe', endpoints }, aPub, kAB);
  assert.deepEqual(openDisco(plain, kBA), { type: 'callMeMaybe', endpoints });
  assert.equal(body(plain)[1], 0, 'unflagged: version 0, as every earlier sender wrote it');
});

test('a flagged call-me-maybe differs from the unflagged one only in the byte older decoders never read', () => {
  const f = body(sealDisco({ type: 'callMeMaybe', endpoints, opened: true }, aPub, kAB));
  const p = body(sealDisco({ type: 'callMeMaybe', endpoints }, aPub, kAB));
  assert.equal(f.length, p.length, 'the same length: an older decoder still finds whole endpoints');
  assert.deepEqual(Buffer.concat([f.subarray(0, 1), f.subarray(2)]), Buffer.concat([p.subarray(0, 1), p.subarray(2)]));
  assert.deepEqual(legacyCallMeMaybe(f), endpoints, 'parsed as before by the older rule');
});

test('a non-zero low nibble and NAT bits without their "known" bit are ignored, not refused; the flags combine', () => {
  const p = body(sealDisco({ type: 'callMeMaybe', endpoints }, aPub, kAB));
  for (const v of [0x01, 0x0f, 0x20, 0x60]) {
    const m = Buffer.from(p);
    m[1] = v;
    assert.deepEqual(decodeBody(m), { type: 'callMeMaybe', endpoints }, `byte 1 = ${v}`);
  }
  const m = Buffer.from(p);
  m[1] = 0x8f;
  assert.deepEqual(decodeBody(m), { type: 'callMeMaybe', endpoints, opened: true });
  m[1] = 0xb0;
  assert.deepEqual(decodeBody(m), { type: 'callMeMaybe', endpoints, nat: { mapping: 'hard', predict: false }, opened: true });
  const both = body(sealDisco({ type: 'callMeMaybe', endpoints, opened: true, nat: { mapping: 'easy', predict: true } }, aPub, kAB));
  assert.deepEqual(decodeBody(both), { type: 'callMeMaybe', endpoints, nat: { mapping: 'easy', predict: true }, opened: true });
});
