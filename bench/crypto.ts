// Microbenchmark behind the crypto choice in src/engine/device/crypto.ts: the
// per-packet AEAD and the handshake's X25519, node:crypto (OpenSSL) against
// @noble, measured in one run on this machine. `node dist/bench/crypto.js`
import { createCipheriv, generateKeyPairSync, randomBytes } from 'node:crypto';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { aeadNonce, dh, generatePrivateKey, privateKeyObject, publicKeyOf } from '../src/engine/device/crypto.js';
import { packetAead } from '../src/engine/device/aead.js';

const PACKET_BYTES = 1420;
const key = randomBytes(32);
const pkt = randomBytes(PACKET_BYTES);
const ad = Buffer.alloc(0);

function perOpMicros(n: number, fn: (i: number) => void): number {
  for (let i = 0; i < Math.min(n, 2000); i++) fn(i); // warm up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  return Number(process.hrtime.bigint() - t0) / 1000 / n;
}

const nonce = Buffer.alloc(12);
const nodeAead = perOpMicros(50_000, (i) => {
  const c = createCipheriv('chacha20-poly1305', key, aeadNonce(i, nonce), { authTagLength: 16 });
  c.update(pkt);
  c.final();
  c.getAuthTag();
});
const evp = packetAead();
const sealed = Buffer.alloc(PACKET_BYTES + 16);
const evpAead = perOpMicros(50_000, (i) => {
  evp.seal(key, i, pkt, 0, sealed, 0);
});
const out = new Uint8Array(PACKET_BYTES + 16);
const nobleAead = perOpMicros(20_000, (i) => {
  chacha20poly1305(key, aeadNonce(i, nonce), ad).encrypt(pkt, out);
});

const a = privateKeyObject(generatePrivateKey());
const bPub = publicKeyOf(generatePrivateKey());
const nodeDh = perOpMicros(5_000, () => dh(a, bPub));
const aRaw = generatePrivateKey();
const nobleDh = perOpMicros(500, () => x25519.getSharedSecret(aRaw, bPub));
const nodeKeygen = perOpMicros(5_000, () => generateKeyPairSync('x25519'));

const rows = [
  ['ChaCha20-Poly1305 seal, 1,420 B', nodeAead, nobleAead],
  [`  same via ${evp.name} (in use)`, evpAead, nobleAead],
  ['X25519 shared secret', nodeDh, nobleDh],
  ['X25519 key generation (node)', nodeKeygen, NaN],
] as const;
console.log('operation'.padEnd(36), 'node:crypto µs'.padStart(16), '@noble µs'.padStart(12), 'ratio'.padStart(8));
for (const [name, n, nb] of rows) {
  console.log(
    name.padEnd(36),
    n.toFixed(2).padStart(16),
    (Number.isNaN(nb) ? '-' : nb.toFixed(2)).padStart(12),
    (Number.isNaN(nb) ? '-' : (nb / n).toFixed(1) + '×').padStart(8),
  );
}
console.log(`AEAD throughput one core: node ${((PACKET_BYTES * 8) / nodeAead).toFixed(0)} Mbit/s, noble ${((PACKET_BYTES * 8) / nobleAead).toFixed(0)} Mbit/s`);
