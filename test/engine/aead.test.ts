// The fast AEAD paths (libsodium, the default, and OpenSSL's EVP, both through
// koffi) must equal node:crypto byte for byte, for every length, padding and
// counter, and must reject tampering. packetAead() falls back to the next path
// when one cannot be loaded or fails its self-test; in CI (deps/debian.json
// installs libsodium, and the supported Node exports OpenSSL) each fast path
// must load, or the comparison would hold trivially.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { loadEvp, nodeCryptoAead, packetAead, type PacketAead } from '../../src/engine/device/aead.js';
import { loadSodium } from '../../src/engine/device/aead-sodium.js';
import { inCI, skipTest } from '../helpers/ci.js';

test('the packet AEAD in use is the default, libsodium, unless the environment chose another', () => {
  const inUse = packetAead().name;
  process.stderr.write(`packet AEAD in use: ${inUse}\n`);
  if (process.env.MESHCTL_AEAD === undefined && inCI()) assert.equal(inUse, 'libsodium', 'the default fell back in CI');
});

test('libsodium agrees with node:crypto and rejects tampering', (t) => {
  const sodium = loadSodium();
  if (!sodium) return skipTest(t, 'the libsodium AEAD test', 'libsodium.so.23 does not load (apt-get install libsodium23)');
  agreesWithNodeCrypto(sodium);
});

test("Node's OpenSSL (EVP) agrees with node:crypto and rejects tampering", (t) => {
  const evp = loadEvp();
  if (!evp) return skipTest(t, 'the OpenSSL EVP AEAD test', "Node's OpenSSL symbols are not reachable through koffi or fail the self-test");
  agreesWithNodeCrypto(evp);
});

function agreesWithNodeCrypto(fast: PacketAead): void {
  const ref = nodeCryptoAead();
  for (let i = 0; i < 2000; i++) {
    const key = randomBytes(32);
    const plain = randomBytes(i < 20 ? i : randomInt(0, 1500));
    const pad = randomInt(0, 16);
    const counter = i % 3 === 0 ? randomInt(0, 2 ** 47) * 3 : i;
    const a = Buffer.alloc(plain.length + pad + 16 + 8);
    const b = Buffer.alloc(a.length);
    const n = fast.seal(key, counter, plain, pad, a, 8);
    assert.equal(n, ref.seal(key, counter, plain, pad, b, 8));
    assert.ok(a.equals(b), `mismatch at length ${plain.length}`);
    const opened = fast.open(key, counter, a.subarray(8, 8 + n));
    assert.ok(opened?.subarray(0, plain.length).equals(plain));
    const t = Buffer.from(a.subarray(8, 8 + n));
    t[randomInt(0, t.length)]! ^= 1 << randomInt(0, 8);
    assert.equal(fast.open(key, counter, t), null);
    assert.equal(fast.open(key, counter + 1, a.subarray(8, 8 + n)), null);
    // the device opens at an offset into the datagram (after the transport header), with no view made by the caller
    const dg = a.subarray(0, 8 + n);
    const atOff = fast.open(key, counter, dg, 8);
    assert.ok(atOff && atOff.length === n - 16 && atOff.subarray(0, plain.length).equals(plain));
    const viaRef = ref.open(key, counter, dg, 8);
    assert.ok(viaRef?.equals(atOff));
    assert.equal(fast.open(key, counter, Buffer.concat([Buffer.alloc(8), t]), 8), null);
  }
  assert.equal(fast.open(randomBytes(32), 0, Buffer.alloc(30), 16), null);
  assert.equal(ref.open(randomBytes(32), 0, Buffer.alloc(30), 16), null);
  // shorter than a tag: refused, not thrown (the device checks sizes first, but the AEAD must not rely on it)
  assert.equal(fast.open(randomBytes(32), 0, Buffer.alloc(15)), null);
  assert.equal(ref.open(randomBytes(32), 0, Buffer.alloc(15)), null);
  const work = Buffer.alloc(2048);
  for (const len of [0, 1, 1420]) {
    const key = randomBytes(32);
    const sealed = Buffer.alloc(16 + len + 16);
    const n = ref.seal(key, 77, randomBytes(len), 0, sealed, 16);
    assert.equal(fast.openInto(key, 77, sealed, 16, work, work.subarray(16)), n - 16);
    sealed[16]! ^= 1;
    assert.equal(fast.openInto(key, 77, sealed, 16, work, work.subarray(16)), -1);
  }
}
