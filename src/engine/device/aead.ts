// The per-packet ChaCha20-Poly1305 of transport data. node:crypto builds a
// Cipheriv object per packet (~5.5 µs per 1,420 B here, half of it object
// set-up); calling the same OpenSSL that is linked into Node through koffi,
// with one reused EVP context, costs ~2.3 µs (bench/crypto.js). If the
// symbols are not reachable (a Node built without exported OpenSSL), or
// MESHCTL_AEAD=node, the node:crypto path is used: same bytes, slower.
// Before either, libsodium (aead-sodium.ts) when it loads: one call a packet
// instead of EVP's four (MESHCTL_AEAD=evp skips it).
import { createCipheriv } from 'node:crypto';
import { koffi } from '../../util/koffi.js';
import { zeroRange } from '../../util/bytes.js';
import { aeadChoice } from '../../util/knobs.js';
import { loadSodium } from './aead-sodium.js';
import { SealViews } from './seal-views.js';
import { aeadNonce, aeadOpen, TAG_LEN } from './crypto.js';

export interface PacketAead {
  readonly name: 'openssl-evp' | 'node-crypto' | 'libsodium';
  /** Encrypts `plain` followed by `padLen` zero bytes into `out` at `off`; the tag follows. Returns bytes written. */
  seal(key: Buffer, counter: number, plain: Buffer, padLen: number, out: Buffer, off: number): number;
  /** Decrypts and authenticates what follows `off` in `sealed`; null if the tag does not verify. */
  open(key: Buffer, counter: number, sealed: Buffer, off?: number): Buffer | null;
  /**
   * Opens `sealed` (ciphertext and tag after `off`) into `work`, which the caller reuses: `sealed` is copied to its
   * start and the ciphertext decrypted in place, so the plaintext is at `off`. `body` is the caller's view of `work`
   * from `off`, made once, so no view is made per packet. Returns the plaintext length, or -1 if the tag does not
   * verify or `sealed` is longer than `work`.
   */
  openInto(key: Buffer, counter: number, sealed: Buffer, off: number, work: Buffer, body: Uint8Array): number;
}

const ZERO_PAD = Buffer.alloc(16);
const EMPTY_AD = Buffer.alloc(0);
const EVP_CTRL_AEAD_GET_TAG = 0x10;
const EVP_CTRL_AEAD_SET_TAG = 0x11;
class NodeCryptoAead implements PacketAead {
  readonly name = 'node-crypto' as const;
  private readonly nonce = Buffer.alloc(12);
  seal(key: Buffer, counter: number, plain: Buffer, padLen: number, out: Buffer, off: number): number {
    const c = createCipheriv('chacha20-poly1305', key, aeadNonce(counter, this.nonce), { authTagLength: TAG_LEN });
    let o = off + c.update(plain).copy(out, off);
    if (padLen > 0) o += c.update(ZERO_PAD.subarray(0, padLen)).copy(out, o);
    c.final();
    o += c.getAuthTag().copy(out, o);
    return o - off;
  }
  open(key: Buffer, counter: number, sealed: Buffer, off = 0): Buffer | null {
    return aeadOpen(key, counter, off === 0 ? sealed : sealed.subarray(off), EMPTY_AD);
  }
  openInto(key: Buffer, counter: number, sealed: Buffer, off: number, work: Buffer): number {
    const plain = sealed.length <= work.length ? this.open(key, counter, sealed, off) : null;
    if (!plain) return -1;
    work.set(plain, off);
    return plain.length;
  }
}

type Fn = (...args: unknown[]) => number;

class EvpAead implements PacketAead {
  readonly name = 'openssl-evp' as const;
  private readonly nonce = Buffer.alloc(12);
  private readonly outl = new Int32Array(1);
  private readonly tag = Buffer.alloc(TAG_LEN);
  /** where Final may write: ChaCha20-Poly1305 writes nothing there, so no view of the packet is made for it */
  private readonly sink = Buffer.alloc(32);
  private readonly sealTag = Buffer.alloc(TAG_LEN);
  private readonly sealViews = new SealViews();
  constructor(
    private readonly enc: unknown,
    private readonly dec: unknown,
    private readonly encInit: Fn,
    private readonly encUpdate: Fn,
    private readonly encFinal: Fn,
    private readonly decInit: Fn,
    private readonly decUpdate: Fn,
    private readonly decFinal: Fn,
    private readonly ctrl: Fn,
  ) {}

  seal(key: Buffer, counter: number, plain: Buffer, padLen: number, out: Buffer, off: number): number {
    const ctx = this.enc;
    // the plaintext and its zero padding are laid out in `out` and encrypted in place:
    // one EVP call for both instead of two (each koffi call costs 4–11 µs, docs/performance.md)
    const n = plain.length + padLen;
    out.set(plain, off);
    if (padLen > 0) zeroRange(out, off + plain.length, off + n);
    this.encInit(ctx, null, null, key, aeadNonce(counter, this.nonce));
    let o = off;
    if (n > 0) {
      const region = this.sealViews.of(out, off);
      this.encUpdate(ctx, region, this.outl, region, n);
      o += this.outl[0]!;
    }
    // views of `out` would be per-packet garbage (docs/performance.md, "Per-packet garbage"): the tag goes via our own buffer
    this.encFinal(ctx, this.sink, this.outl);
    this.ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, this.sealTag);
    out.set(this.sealTag, o);
    return o + TAG_LEN - off;
  }

  open(key: Buffer, counter: number, sealed: Buffer, off = 0): Buffer | null {
    const ctx = this.dec;
    const ctLen = sealed.length - off - TAG_LEN;
    if (ctLen < 0) return null;
    const plain = Buffer.allocUnsafe(ctLen);
    this.decInit(ctx, null, null, key, aeadNonce(counter, this.nonce));
    // OpenSSL may read the tag as late as Final: our own buffer, untouched until the next open()
    for (let i = 0; i < TAG_LEN; i++) this.tag[i] = sealed[off + ctLen + i]!; // Buffer#copy from an offset makes a view
    this.ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, this.tag);
    // the length argument bounds the input; a plain Uint8Array view, because Buffer#subarray is
    // Node's JavaScript (offset checks, a FastBuffer constructor) where this is one builtin
    if (ctLen > 0) this.decUpdate(ctx, plain, this.outl, off === 0 ? sealed : new Uint8Array(sealed.buffer, sealed.byteOffset + off, ctLen), ctLen);
    return this.decFinal(ctx, this.sink, this.outl) === 1 ? plain : null;
  }

  openInto(key: Buffer, counter: number, sealed: Buffer, off: number, work: Buffer, body: Uint8Array): number {
    const ctx = this.dec;
    const ctLen = sealed.length - off - TAG_LEN;
    if (ctLen < 0 || sealed.length > work.length) return -1;
    // one copy into memory that stays warm, then in place (OpenSSL allows out == in): no Buffer and no view per packet
    work.set(sealed);
    this.decInit(ctx, null, null, key, aeadNonce(counter, this.nonce));
    for (let i = 0; i < TAG_LEN; i++) this.tag[i] = work[off + ctLen + i]!;
    this.ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, this.tag);
    if (ctLen > 0) this.decUpdate(ctx, body, this.outl, body, ctLen);
    return this.decFinal(ctx, this.sink, this.outl) === 1 ? ctLen : -1;
  }
}

/** Node's OpenSSL ChaCha20-Poly1305 through koffi, or null when its symbols are not reachable or it fails the self-test. */
export function loadEvp(): PacketAead | null {
  try {
    const lib = koffi.load(null as unknown as string);
    const cipher = lib.func('void *EVP_chacha20_poly1305()');
    const ctxNew = lib.func('void *EVP_CIPHER_CTX_new()');
    const encInit = lib.func('int EVP_EncryptInit_ex(void *, void *, void *, void *, void *)');
    const encUpdate = lib.func('int EVP_EncryptUpdate(void *, void *, void *, void *, int)');
    const encFinal = lib.func('int EVP_EncryptFinal_ex(void *, void *, void *)');
    const decInit = lib.func('int EVP_DecryptInit_ex(void *, void *, void *, void *, void *)');
    const decUpdate = lib.func('int EVP_DecryptUpdate(void *, void *, void *, void *, int)');
    const decFinal = lib.func('int EVP_DecryptFinal_ex(void *, void *, void *)');
    const ctrl = lib.func('int EVP_CIPHER_CTX_ctrl(void *, int, int, void *)');
    const enc = ctxNew();
    const dec = ctxNew();
    if (!enc || !dec) return null;
    if (encInit(enc, cipher(), null, null, null) !== 1 || decInit(dec, cipher(), null, null, null) !== 1) return null;
    const aead = new EvpAead(enc, dec, encInit, encUpdate, encFinal, decInit, decUpdate, decFinal, ctrl);
    return selfTest(aead) ? aead : null;
  } catch {
    return null;
  }
}

/** The fast path must produce node:crypto's exact bytes, or it is not used. */
function selfTest(a: PacketAead): boolean {
  const ref = new NodeCryptoAead();
  const key = Buffer.alloc(32, 7);
  const plain = Buffer.from('meshctl aead self-test, 37 bytes long');
  const x = Buffer.alloc(64);
  const y = Buffer.alloc(64);
  const n = a.seal(key, 5, plain, 11, x, 0);
  ref.seal(key, 5, plain, 11, y, 0);
  if (!x.equals(y)) return false;
  const opened = a.open(key, 5, x.subarray(0, n));
  const work = Buffer.alloc(80);
  const into = a.openInto(key, 5, Buffer.concat([Buffer.alloc(16, 1), x.subarray(0, n)]), 16, work, work.subarray(16));
  const intoOk = into === n - TAG_LEN && work.subarray(16, 16 + plain.length).equals(plain) && work[0] === 1;
  x[3]! ^= 1;
  const refused =
    a.open(key, 5, x.subarray(0, n)) === null && a.openInto(key, 5, Buffer.concat([Buffer.alloc(16), x.subarray(0, n)]), 16, work, work.subarray(16)) === -1;
  return opened?.subarray(0, plain.length).equals(plain) === true && intoOk && refused;
}

let chosen: PacketAead | null = null;

/** The process-wide AEAD (single-threaded use: one shared EVP context per direction). */
export function packetAead(): PacketAead {
  if (chosen) return chosen;
  const want = aeadChoice();
  const sodium = want === 'sodium' ? loadSodium() : null;
  // each fast path must give node:crypto's exact bytes, or the next is taken
  chosen = (sodium && selfTest(sodium) ? sodium : null) ?? (want === 'node' ? null : loadEvp()) ?? new NodeCryptoAead();
  return chosen;
}

export function nodeCryptoAead(): PacketAead {
  return new NodeCryptoAead();
}
