// The handshake checked against an independent, byte-for-byte transcription of
// the whitepaper (§5.4.2–5.4.5) written with @noble primitives and fixed keys:
// two implementations that share no code must produce identical messages and keys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { x25519 } from '@noble/curves/ed25519.js';
import { blake2s } from '@noble/hashes/blake2.js';
import { hmac as nobleHmac } from '@noble/hashes/hmac.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { consumeInitiation, consumeResponse, createInitiation, createResponse, makeIdentity, makeRemoteStatic } from '../../src/engine/device/noise.js';
import { clampPrivateKey, generatePrivateKey, publicKeyOf, tai64n } from '../../src/engine/device/crypto.js';

const enc = new TextEncoder();
const cat = (...a: Uint8Array[]): Uint8Array => Buffer.concat(a);
const H = (...a: Uint8Array[]): Uint8Array => blake2s(cat(...a));
const HMAC = (k: Uint8Array, d: Uint8Array): Uint8Array => nobleHmac(blake2s, k, d);
function KDF(n: number, key: Uint8Array, input: Uint8Array): Uint8Array[] {
  const t0 = HMAC(key, input);
  const out: Uint8Array[] = [];
  let prev: Uint8Array = new Uint8Array(0);
  for (let i = 1; i <= n; i++) {
    prev = HMAC(t0, cat(prev, Uint8Array.of(i)));
    out.push(prev);
  }
  return out;
}
const nonce0 = new Uint8Array(12);
const AEAD = (k: Uint8Array, p: Uint8Array, ad: Uint8Array): Uint8Array => chacha20poly1305(k, nonce0, ad).encrypt(p);

function fixedKey(seed: number): Buffer {
  return clampPrivateKey(Buffer.alloc(32, seed));
}

/** The whitepaper's initiator and responder, for fixed keys. */
function reference(si: Uint8Array, sr: Uint8Array, ei: Uint8Array, er: Uint8Array, ts: Uint8Array, psk: Uint8Array) {
  const Si = x25519.getPublicKey(si),
    Sr = x25519.getPublicKey(sr);
  const Ei = x25519.getPublicKey(ei),
    Er = x25519.getPublicKey(er);
  let C = H(enc.encode('Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s'));
  let Hh = H(C, enc.encode('WireGuard v1 zx2c4 Jason@zx2c4.com'));
  Hh = H(Hh, Sr);
  C = KDF(1, C, Ei)[0]!;
  Hh = H(Hh, Ei);
  let k: Uint8Array;
  [C, k] = KDF(2, C, x25519.getSharedSecret(ei, Sr)) as [Uint8Array, Uint8Array];
  const encStatic = AEAD(k, Si, Hh);
  Hh = H(Hh, encStatic);
  [C, k] = KDF(2, C, x25519.getSharedSecret(si, Sr)) as [Uint8Array, Uint8Array];
  const encTs = AEAD(k, ts, Hh);
  Hh = H(Hh, encTs);
  // responder
  C = KDF(1, C, Er)[0]!;
  Hh = H(Hh, Er);
  C = KDF(1, C, x25519.getSharedSecret(er, Ei))[0]!;
  C = KDF(1, C, x25519.getSharedSecret(er, Si))[0]!;
  const mixed = KDF(3, C, psk) as [Uint8Array, Uint8Array, Uint8Array];
  C = mixed[0];
  const tau = mixed[1];
  k = mixed[2];
  Hh = H(Hh, tau);
  const encNothing = AEAD(k, new Uint8Array(0), Hh);
  const [tInitSend, tInitRecv] = KDF(2, C, new Uint8Array(0)) as [Uint8Array, Uint8Array];
  return { Ei, Er, encStatic, encTs, encNothing, tInitSend, tInitRecv };
}

for (const withPsk of [false, true]) {
  test(`handshake matches the whitepaper transcript byte for byte (${withPsk ? 'with' : 'without'} PSK)`, () => {
    const si = fixedKey(1),
      sr = fixedKey(2),
      ei = fixedKey(3),
      er = fixedKey(4);
    const psk = withPsk ? Buffer.alloc(32, 9) : Buffer.alloc(32);
    const ts = tai64n(1_700_000_000_123);
    const ref = reference(si, sr, ei, er, ts, psk);

    const initiator = makeIdentity(si);
    const responder = makeIdentity(sr);
    const respAsSeen = makeRemoteStatic(initiator, responder.publicKey, withPsk ? psk : null);
    const initAsSeen = makeRemoteStatic(responder, initiator.publicKey, withPsk ? psk : null);

    const { message: init, state } = createInitiation(initiator, respAsSeen, 0x11223344, ts, ei);
    assert.deepEqual(new Uint8Array(init.ephemeral), ref.Ei);
    assert.deepEqual(new Uint8Array(init.encryptedStatic), ref.encStatic);
    assert.deepEqual(new Uint8Array(init.encryptedTimestamp), ref.encTs);

    const consumed = consumeInitiation(responder, init, (pub) => (pub.equals(initiator.publicKey) ? initAsSeen.staticStatic : null));
    assert.ok(consumed);
    assert.ok(consumed.remoteStaticKey.equals(initiator.publicKey));
    assert.ok(consumed.timestamp.equals(ts));
    assert.equal(consumed.remoteIndex, 0x11223344);

    const { message: resp, keys: rKeys } = createResponse(initAsSeen, consumed, 0x55667788, er);
    assert.deepEqual(new Uint8Array(resp.ephemeral), ref.Er);
    assert.deepEqual(new Uint8Array(resp.encryptedNothing), ref.encNothing);
    assert.equal(resp.receiver, 0x11223344);

    const iKeys = consumeResponse(initiator, respAsSeen, state, resp);
    assert.ok(iKeys);
    assert.deepEqual(new Uint8Array(iKeys.send), ref.tInitSend);
    assert.deepEqual(new Uint8Array(iKeys.recv), ref.tInitRecv);
    assert.ok(rKeys.send.equals(iKeys.recv));
    assert.ok(rKeys.recv.equals(iKeys.send));
  });
}

test('an initiation for another key, or from an unknown peer, does not open', () => {
  const a = makeIdentity(generatePrivateKey());
  const b = makeIdentity(generatePrivateKey());
  const c = makeIdentity(generatePrivateKey());
  const { message } = createInitiation(a, makeRemoteStatic(a, b.publicKey, null), 1, tai64n(Date.now()));
  assert.equal(
    consumeInitiation(c, message, () => Buffer.alloc(32, 1)),
    null,
    'wrong responder',
  );
  assert.equal(
    consumeInitiation(b, message, () => null),
    null,
    'unknown initiator',
  );
});

test('a mismatched PSK fails the response, not silently derives other keys', () => {
  const a = makeIdentity(generatePrivateKey());
  const b = makeIdentity(generatePrivateKey());
  const { message, state } = createInitiation(a, makeRemoteStatic(a, b.publicKey, Buffer.alloc(32, 1)), 7, tai64n(Date.now()));
  const bSeesA = makeRemoteStatic(b, a.publicKey, Buffer.alloc(32, 2));
  const consumed = consumeInitiation(b, message, () => bSeesA.staticStatic)!;
  const { message: resp } = createResponse(bSeesA, consumed, 8);
  assert.equal(consumeResponse(a, makeRemoteStatic(a, b.publicKey, Buffer.alloc(32, 1)), state, resp), null);
});

test('node:crypto X25519 agrees with @noble/curves (public keys and shared secrets)', () => {
  for (let i = 0; i < 20; i++) {
    const k = generatePrivateKey();
    assert.deepEqual(new Uint8Array(publicKeyOf(k)), x25519.getPublicKey(k));
  }
});
