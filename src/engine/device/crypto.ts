// The WireGuard primitives (whitepaper §5.4): HASH/HMAC/KDF over BLAKE2s,
// MAC as keyed BLAKE2s-128, DH as X25519, AEAD as ChaCha20-Poly1305 and
// XAEAD as XChaCha20-Poly1305.
//
// Choice by measurement (docs/performance.md "Crypto"): node:crypto's
// ChaCha20-Poly1305 costs ~10.5 µs per 1,420-byte packet against ~23–28 µs for
// @noble/ciphers, and its X25519 ~36 µs against ~660 µs for @noble/curves, so
// every DH uses node:crypto (OpenSSL); the per-packet AEAD goes further and
// calls Node's OpenSSL directly (aead.ts). Keyed BLAKE2s-128
// and XChaCha20-Poly1305 are not in node:crypto: those come from @noble.
import { putU32le } from '../../util/bytes.js';
import { createCipheriv, createDecipheriv, createHash, createHmac } from 'node:crypto';
import { blake2s } from '@noble/hashes/blake2.js';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';

export { KEY_LEN } from '../../crypto/x25519.js';
export const TAG_LEN = 16;

export {
  clampPrivateKey,
  dh,
  generatePrivateKey,
  isZero,
  privateKeyObject,
  publicKeyObject,
  publicKeyOf,
  WeakKeyError,
} from '../../crypto/x25519.js';

export function hash(...parts: Uint8Array[]): Buffer {
  const h = createHash('blake2s256');
  for (const p of parts) h.update(p);
  return h.digest();
}

export function hmac(key: Uint8Array, ...parts: Uint8Array[]): Buffer {
  const h = createHmac('blake2s256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** MAC(key, input) = Keyed-BLAKE2s(key, input), 16 bytes. */
export function mac(key: Uint8Array, input: Uint8Array): Buffer {
  return Buffer.from(blake2s(input, { key, dkLen: 16 }));
}

/** KDF_n from the whitepaper: HKDF over HMAC-BLAKE2s, n outputs of 32 bytes. */
export function kdf(n: 1 | 2 | 3, key: Uint8Array, input: Uint8Array): Buffer[] {
  const t0 = hmac(key, input);
  const t1 = hmac(t0, Buffer.of(1));
  if (n === 1) return [t1];
  const t2 = hmac(t0, t1, Buffer.of(2));
  if (n === 2) return [t1, t2];
  const t3 = hmac(t0, t2, Buffer.of(3));
  return [t1, t2, t3];
}

export const TAI64N_WHITENER_NS = 0x100_0000; // 2^24 ns ≈ 16.8 ms
const TWO_POW_32 = 0x1_0000_0000;

/**
 * 96-bit nonce: 32 zero bits then the 64-bit little-endian counter (whitepaper §5.4).
 * Counters are plain numbers: REJECT_AFTER_TIME (180 s) ends a key long before
 * 2^53 messages, so a number is exact wherever a key is still valid.
 */
export function aeadNonce(counter: number, out: Buffer = Buffer.alloc(12)): Buffer {
  putU32le(out, 0, 0);
  putU32le(out, 4, counter >>> 0);
  putU32le(out, 8, Math.floor(counter / TWO_POW_32));
  return out;
}

export function aeadSeal(key: Uint8Array, counter: number, plaintext: Uint8Array, ad: Uint8Array): Buffer {
  const c = createCipheriv('chacha20-poly1305', key, aeadNonce(counter), { authTagLength: TAG_LEN });
  c.setAAD(ad, { plaintextLength: plaintext.length });
  const body = c.update(plaintext);
  c.final();
  return Buffer.concat([body, c.getAuthTag()]);
}

/** Returns null when authentication fails. */
export function aeadOpen(key: Uint8Array, counter: number, sealed: Uint8Array, ad: Uint8Array): Buffer | null {
  if (sealed.length < TAG_LEN) return null;
  const d = createDecipheriv('chacha20-poly1305', key, aeadNonce(counter), { authTagLength: TAG_LEN });
  d.setAAD(ad, { plaintextLength: sealed.length - TAG_LEN });
  d.setAuthTag(sealed.subarray(sealed.length - TAG_LEN));
  const body = d.update(sealed.subarray(0, sealed.length - TAG_LEN));
  try {
    d.final();
  } catch {
    return null;
  }
  return body;
}

export function xaeadSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Buffer {
  return Buffer.from(xchacha20poly1305(key, nonce, ad).encrypt(plaintext));
}

export function xaeadOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, ad: Uint8Array): Buffer | null {
  try {
    return Buffer.from(xchacha20poly1305(key, nonce, ad).decrypt(sealed));
  } catch {
    return null;
  }
}

/** TAI64N of now: 8-byte big-endian seconds since 1970 + 2^62 + 10 (TAI), 4-byte nanoseconds. */
export function tai64n(nowMs: number): Buffer {
  const b = Buffer.alloc(12);
  const secs = BigInt(Math.floor(nowMs / 1000));
  b.writeBigUInt64BE(0x400000000000000an + secs, 0);
  // wireguard-go rounds nanoseconds down to the nearest ~16 ms (2^24 ns) so a
  // timestamp does not leak a precise clock; we do the same.
  const nanos = Math.floor((nowMs % 1000) * 1e6);
  b.writeUInt32BE(nanos - (nanos % TAI64N_WHITENER_NS), 8);
  return b;
}
