import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createServer } from 'node:https';
import { request } from 'node:https';
import { boxKey, openBox, sealBox } from '../../src/crypto/box.js';
import { createSelfSigned, certFingerprint } from '../../src/crypto/selfsigned.js';
import { keyFromText, keyToText } from '../../src/crypto/keys.js';
import { generatePrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';

// NaCl's own test vector (tests/box.c in the NaCl distribution): Alice's secret, Bob's public, their shared key
const ALICE_SK = Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex');
const BOB_PK = Buffer.from('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f', 'hex');
const BEFORENM = '1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389';

test('crypto_box_beforenm matches NaCl', () => {
  assert.equal(Buffer.from(boxKey(ALICE_SK, BOB_PK)).toString('hex'), BEFORENM);
});

test('a box opens only with the shared key, and any flipped bit is refused', () => {
  const a = generatePrivateKey();
  const b = generatePrivateKey();
  const k1 = boxKey(a, publicKeyOf(b));
  const k2 = boxKey(b, publicKeyOf(a));
  assert.deepEqual(Buffer.from(k1), Buffer.from(k2));
  const sealed = sealBox(k1, Buffer.from('hello'));
  assert.equal(openBox(k2, sealed)?.toString(), 'hello');
  for (let i = 0; i < sealed.length; i++) {
    const bad = Buffer.from(sealed);
    bad[i]! ^= 1;
    assert.equal(openBox(k2, bad), null, `bit flip at ${i}`);
  }
  assert.equal(openBox(boxKey(generatePrivateKey(), publicKeyOf(a)), sealed), null);
  assert.equal(openBox(k2, Buffer.alloc(10)), null);
});

test('key text form round-trips and refuses anything not 32 bytes of base64', () => {
  const k = publicKeyOf(generatePrivateKey());
  assert.deepEqual(keyFromText(keyToText(k)), k);
  for (const bad of ['', 'abc', k.toString('hex'), keyToText(k).slice(1), 42, null]) assert.equal(keyFromText(bad), null);
});

test('a self-signed certificate serves TLS and a client pinning it connects', async () => {
  const c = createSelfSigned('meshctl test', ['localhost', '127.0.0.1', '::1']);
  const x = new X509Certificate(c.certPem);
  assert.ok(x.checkIssued(x) && x.verify(x.publicKey));
  assert.match(x.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
  assert.equal(certFingerprint(c.certPem).length, 64);
  const server = createServer({ cert: c.certPem, key: c.keyPem }, (_q, r) => r.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  const get = (ca?: string) =>
    new Promise<string>((resolve, reject) => {
      request({ host: '127.0.0.1', port, ca }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve(body));
      })
        .on('error', reject)
        .end();
    });
  try {
    assert.equal(await get(c.certPem), 'ok');
    await assert.rejects(get(undefined), /self-signed/);
    await assert.rejects(get(createSelfSigned('other', ['127.0.0.1']).certPem), /self-signed|unable to verify|signature/);
  } finally {
    server.close();
  }
});

test('certificate serials are minimal positive DER integers (strict parsers refuse a leading zero byte)', () => {
  for (let i = 0; i < 300; i++) {
    const x = new X509Certificate(createSelfSigned('t', ['127.0.0.1']).certPem);
    assert.match(x.serialNumber, /^[4-7][0-9A-F]{31}$/);
  }
});
