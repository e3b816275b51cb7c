import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { boxKey } from '../../src/crypto/box.js';
import { generatePrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';
import { decodeBody, discoSender, isDisco, openDisco, sealDisco, type DiscoMessage } from '../../src/nat/disco.js';
import { classify } from '../../src/engine/device/messages.js';

const a = generatePrivateKey();
const b = generatePrivateKey();
const aPub = publicKeyOf(a);
const kAB = boxKey(a, publicKeyOf(b));
const kBA = boxKey(b, aPub);

const CASES: DiscoMessage[] = [
  { type: 'ping', txid: randomBytes(12), nodeKey: randomBytes(32) },
  { type: 'pong', txid: randomBytes(12), src: { address: '10.1.2.3', port: 41641 } },
  { type: 'pong', txid: randomBytes(12), src: { address: 'fd7a:115c:a1e0::1', port: 1 } },
  { type: 'pong', txid: randomBytes(12), src: { address: '2001:db8::', port: 65535 } },
  {
    type: 'callMeMaybe',
    endpoints: [
      { address: '192.168.1.5', port: 41641 },
      { address: '::1', port: 9 },
    ],
  },
  { type: 'callMeMaybe', endpoints: [] },
];

test('disco messages round-trip through seal and open', () => {
  for (const m of CASES) {
    const pkt = sealDisco(m, aPub, kAB);
    assert.ok(isDisco(pkt));
    assert.deepEqual(discoSender(pkt), aPub);
    assert.deepEqual(openDisco(pkt, kBA), m);
  }
});

test('a disco packet is never mistaken for WireGuard and vice versa', () => {
  const pkt = sealDisco(CASES[0]!, aPub, kAB);
  assert.equal(classify(pkt), 'unknownType');
  for (let type = 1; type <= 4; type++) {
    const wg = Buffer.alloc(148);
    wg[0] = type;
    assert.equal(isDisco(wg), false);
  }
});

test('fuzz: random and mutated disco packets are refused without throwing', () => {
  const good = sealDisco(CASES[1]!, aPub, kAB);
  let opened = 0;
  for (let i = 0; i < 5000; i++) {
    const pkt = i % 2 ? randomBytes(Math.floor(Math.random() * 200)) : Buffer.from(good);
    if (i % 2 === 0) for (let j = 0; j < 1 + (i % 4); j++) pkt[Math.floor(Math.random() * pkt.length)]! ^= 1 << (i % 8);
    // the receiver picks the key by the sender field, so a changed sender cannot open either
    if (isDisco(pkt) && discoSender(pkt).equals(aPub) && openDisco(pkt, kBA)) opened++;
    decodeBody(randomBytes(i % 64));
  }
  assert.equal(opened, 0, 'no forged or damaged packet opens');
});
