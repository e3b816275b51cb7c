// NaCl crypto_box (X25519 + HSalsa20 + XSalsa20-Poly1305): the sealed envelope
// of disco messages and of the control protocol's signed requests. Opening a
// box proves the sender holds the private half of the key it claims, which is
// how a node proves possession of its key without ever sending it.
import { randomBytes, type KeyObject } from 'node:crypto';
import { hsalsa, xsalsa20poly1305 } from '@noble/ciphers/salsa.js';
import { dh, privateKeyObject } from './x25519.js';

export const BOX_NONCE_LEN = 24;
export const BOX_OVERHEAD = 16;

// "expand 32-byte k" as four little-endian words (Salsa20 sigma)
const SIGMA = new Uint32Array([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]);

function u32le(b: Uint8Array): Uint32Array {
  const out = new Uint32Array(b.length / 4);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = v.getUint32(i * 4, true);
  return out;
}

/**
 * crypto_box_beforenm: the symmetric key two parties share; cache it per peer. A side that computes it with
 * many peers passes its private key as a KeyObject made once: making one from raw bytes costs ~0.7 ms, ten
 * times the X25519 itself.
 */
export function boxKey(privateKey: Uint8Array | KeyObject, peerPublic: Uint8Array): Uint8Array {
  const shared = dh(privateKey instanceof Uint8Array ? privateKeyObject(privateKey) : privateKey, peerPublic);
  const out = new Uint32Array(8);
  hsalsa(SIGMA, u32le(shared), new Uint32Array(4), out);
  const key = new Uint8Array(32);
  const v = new DataView(key.buffer);
  for (let i = 0; i < 8; i++) v.setUint32(i * 4, out[i]!, true);
  return key;
}

/** Seals with a fresh random nonce; returns nonce ‖ ciphertext. */
export function sealBox(key: Uint8Array, plaintext: Uint8Array): Buffer {
  const nonce = randomBytes(BOX_NONCE_LEN);
  return Buffer.concat([nonce, xsalsa20poly1305(key, nonce).encrypt(plaintext)]);
}

/** Opens nonce ‖ ciphertext; null when it was not sealed with this key. */
export function openBox(key: Uint8Array, sealed: Uint8Array): Buffer | null {
  if (sealed.length < BOX_NONCE_LEN + BOX_OVERHEAD) return null;
  try {
    return Buffer.from(xsalsa20poly1305(key, sealed.subarray(0, BOX_NONCE_LEN)).decrypt(sealed.subarray(BOX_NONCE_LEN)));
  } catch {
    return null;
  }
}
