// MAC1/MAC2 and cookie replies (whitepaper §5.4.4, §5.4.7): the DoS guard of
// the handshake. MAC1 lets us drop messages not meant for our public key
// before any DH; MAC2, demanded only under load, proves the sender can receive
// at its claimed source address.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { COOKIE_SECRET_MAX_AGE_MS, LABEL_COOKIE, LABEL_MAC1, NONCE_LEN_XAEAD_BYTES } from './constants.js';
import { hash, mac, xaeadOpen, xaeadSeal } from './crypto.js';
import { encodeCookieReply, type CookieReply } from './messages.js';
import type { Endpoint } from '../conn/endpoint.js';
import { ipToBytes } from './ippacket.js';

const MAC_LEN = 16;
const ZERO_MAC = Buffer.alloc(MAC_LEN);

function equalMac(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The source as bytes for the cookie: address bytes then port (little endian). */
export function sourceBytes(ep: Endpoint): Buffer {
  const port = Buffer.alloc(2);
  port.writeUInt16LE(ep.port);
  return Buffer.concat([ipToBytes(ep.address), port]);
}

/** Our side as receiver: validates MACs on incoming handshakes and builds cookie replies. */
export class CookieChecker {
  private mac1Key: Buffer;
  private encryptionKey: Buffer;
  private secret = randomBytes(32);
  private secretSetAtMs = -Infinity;

  constructor(
    ourPublicKey: Buffer,
    private readonly nowMs: () => number,
  ) {
    this.mac1Key = hash(Buffer.from(LABEL_MAC1), ourPublicKey);
    this.encryptionKey = hash(Buffer.from(LABEL_COOKIE), ourPublicKey);
  }

  checkMac1(msg: Buffer, mac1Offset: number): boolean {
    const want = mac(this.mac1Key, msg.subarray(0, mac1Offset));
    return equalMac(want, msg.subarray(mac1Offset, mac1Offset + MAC_LEN));
  }

  checkMac2(msg: Buffer, mac2Offset: number, src: Endpoint): boolean {
    if (this.nowMs() - this.secretSetAtMs > COOKIE_SECRET_MAX_AGE_MS) return false;
    const cookie = mac(this.secret, sourceBytes(src));
    const want = mac(cookie, msg.subarray(0, mac2Offset));
    return equalMac(want, msg.subarray(mac2Offset, mac2Offset + MAC_LEN));
  }

  /** A cookie reply to `msg` (an initiation or response whose MAC1 was valid). */
  createReply(msg: Buffer, mac1Offset: number, receiverIndex: number, src: Endpoint): Buffer {
    if (this.nowMs() - this.secretSetAtMs > COOKIE_SECRET_MAX_AGE_MS) {
      this.secret = randomBytes(32);
      this.secretSetAtMs = this.nowMs();
    }
    const cookie = mac(this.secret, sourceBytes(src));
    const nonce = randomBytes(NONCE_LEN_XAEAD_BYTES);
    const mac1 = msg.subarray(mac1Offset, mac1Offset + MAC_LEN);
    const reply: CookieReply = { receiver: receiverIndex, nonce, encryptedCookie: xaeadSeal(this.encryptionKey, nonce, cookie, mac1) };
    return encodeCookieReply(reply);
  }
}

/** Our side as sender to one peer: stamps MACs and remembers the peer's cookie. */
export class CookieGenerator {
  private mac1Key: Buffer;
  private decryptionKey: Buffer;
  private lastMac1: Buffer | null = null;
  private cookie: Buffer | null = null;
  private cookieAtMs = 0;

  constructor(
    peerPublicKey: Buffer,
    private readonly nowMs: () => number,
    private readonly cookieRefreshMs: number,
  ) {
    this.mac1Key = hash(Buffer.from(LABEL_MAC1), peerPublicKey);
    this.decryptionKey = hash(Buffer.from(LABEL_COOKIE), peerPublicKey);
  }

  /** Fills mac1 and (with a fresh cookie) mac2 of an encoded message in place. */
  stamp(msg: Buffer, mac1Offset: number, mac2Offset: number): void {
    const mac1 = mac(this.mac1Key, msg.subarray(0, mac1Offset));
    mac1.copy(msg, mac1Offset);
    this.lastMac1 = mac1;
    const fresh = this.cookie !== null && this.nowMs() - this.cookieAtMs < this.cookieRefreshMs;
    (fresh ? mac(this.cookie!, msg.subarray(0, mac2Offset)) : ZERO_MAC).copy(msg, mac2Offset);
  }

  /** Takes a cookie reply; false if it does not answer our last message. */
  consumeReply(reply: CookieReply): boolean {
    if (!this.lastMac1) return false;
    const cookie = xaeadOpen(this.decryptionKey, reply.nonce, reply.encryptedCookie, this.lastMac1);
    if (!cookie) return false;
    this.cookie = cookie;
    this.cookieAtMs = this.nowMs();
    return true;
  }
}
