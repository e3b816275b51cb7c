// The per-packet ChaCha20-Poly1305 through libsodium, the default: one native
// call per seal or open (the detached IETF construction), where the OpenSSL EVP
// path makes four and pays EVP's dispatch in each (A/B in docs/performance.md).
// Used only if libsodium loads and gives node:crypto's exact bytes; else the
// EVP path (aead.ts).
import { koffi } from '../../util/koffi.js';
import { zeroRange } from '../../util/bytes.js';
import { aeadNonce, TAG_LEN } from './crypto.js';
import type { PacketAead } from './aead.js';
import { SealViews } from './seal-views.js';

type Fn = (...args: unknown[]) => number;

/** Debian's libsodium23 ships this soname; a missing library leaves the EVP path in use. */
const LIBSODIUM = 'libsodium.so.23';

class SodiumAead implements PacketAead {
  readonly name = 'libsodium' as const;
  private readonly nonce = Buffer.alloc(12);
  private readonly tag = Buffer.alloc(TAG_LEN);
  private readonly sealViews = new SealViews();
  constructor(
    private readonly encrypt: Fn,
    private readonly decrypt: Fn,
  ) {}

  seal(key: Buffer, counter: number, plain: Buffer, padLen: number, out: Buffer, off: number): number {
    // plaintext and padding laid out in `out`, encrypted in place (libsodium allows c == m)
    const n = plain.length + padLen;
    out.set(plain, off);
    if (padLen > 0) zeroRange(out, off + plain.length, off + n);
    const region = off === 0 ? out : this.sealViews.of(out, off);
    this.encrypt(region, this.tag, null, region, n, null, 0, null, aeadNonce(counter, this.nonce), key);
    out.set(this.tag, off + n);
    return n + TAG_LEN;
  }

  open(key: Buffer, counter: number, sealed: Buffer, off = 0): Buffer | null {
    const ctLen = sealed.length - off - TAG_LEN;
    if (ctLen < 0) return null;
    const plain = Buffer.allocUnsafe(ctLen);
    for (let i = 0; i < TAG_LEN; i++) this.tag[i] = sealed[off + ctLen + i]!;
    const ct = off === 0 ? sealed : new Uint8Array(sealed.buffer, sealed.byteOffset + off, ctLen);
    return this.decrypt(plain, null, ct, ctLen, this.tag, null, 0, aeadNonce(counter, this.nonce), key) === 0 ? plain : null;
  }

  openInto(key: Buffer, counter: number, sealed: Buffer, off: number, work: Buffer, body: Uint8Array): number {
    const ctLen = sealed.length - off - TAG_LEN;
    if (ctLen < 0 || sealed.length > work.length) return -1;
    work.set(sealed);
    for (let i = 0; i < TAG_LEN; i++) this.tag[i] = work[off + ctLen + i]!;
    return this.decrypt(body, null, body, ctLen, this.tag, null, 0, aeadNonce(counter, this.nonce), key) === 0 ? ctLen : -1;
  }
}

/** libsodium's AEAD, or null when the library is absent or its init fails. */
export function loadSodium(): PacketAead | null {
  try {
    const lib = koffi.load(LIBSODIUM);
    if ((lib.func('int sodium_init()') as Fn)() < 0) return null;
    const encrypt = lib.func(
      'int crypto_aead_chacha20poly1305_ietf_encrypt_detached(void *c, void *mac, void *maclen, void *m, uint64_t mlen, void *ad, uint64_t adlen, void *nsec, void *npub, void *k)',
    ) as Fn;
    const decrypt = lib.func(
      'int crypto_aead_chacha20poly1305_ietf_decrypt_detached(void *m, void *nsec, void *c, uint64_t clen, void *mac, void *ad, uint64_t adlen, void *npub, void *k)',
    ) as Fn;
    return new SodiumAead(encrypt, decrypt);
  } catch {
    return null;
  }
}
