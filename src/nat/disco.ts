// Disco: the small sealed messages peers use to find a path to each other,
// sent on the same UDP socket as WireGuard. Pure codec, no I/O.
//
//   magic "mshdsc" (6) ‖ sender disco public key (32) ‖ nonce (24) ‖ box
//   box plaintext: type (1) ‖ version (1) ‖ body
//
// The magic's first byte (0x6d) is no WireGuard message type (1–4), so the two
// protocols share a socket without ambiguity. Bodies:
//   ping:         txid (12) ‖ sender node key (32)
//   pong:         txid (12) ‖ source address seen (16, IPv4-mapped) ‖ port (2)
//   call-me-maybe: n × (address (16) ‖ port (2))
//
// The second byte of every body is its version (0). In call-me-maybe its high
// nibble carries flags, which decoders that predate them never read: they parse
// a flagged call-me-maybe as before. NAT_FLAG_* (0x10–0x40) say how the
// sender's NAT maps ports and whether it asks for port prediction now
// (docs/nat.md); OPENED (0x80): the sender has just sent TTL-limited openers to
// our endpoints and waits for our full-TTL pings (engine/paths/punch.ts).
import { BOX_NONCE_LEN, BOX_OVERHEAD, openBox, sealBox } from '../crypto/box.js';
import { readIpv6, writeIpv6 } from '../util/ip.js';

export const DISCO_MAGIC = Buffer.from('mshdsc');
const HEADER_LEN = DISCO_MAGIC.length + 32;
const VERSION = 0;
export const TXID_LEN = 12;
const ADDR_LEN = 18;
const MAX_CALL_ME_MAYBE = 32;
const FLAG_OPENED = 0x80;

/** The sender's NAT mapping as its netcheck measured it, and whether it asks the receiver to start port prediction now. */
export interface NatHint {
  /** easy: one public port for every destination; hard: a new port per destination */
  mapping: 'easy' | 'hard';
  predict: boolean;
}

/** call-me-maybe flags in the version byte (bits 4–6; bits 0–3 are the version) */
const NAT_FLAG_KNOWN = 0x10;
const NAT_FLAG_HARD = 0x20;
const NAT_FLAG_PREDICT = 0x40;

export type DiscoMessage =
  | { type: 'ping'; txid: Buffer; nodeKey: Buffer }
  | { type: 'pong'; txid: Buffer; src: { address: string; port: number } }
  | { type: 'callMeMaybe'; endpoints: { address: string; port: number }[]; nat?: NatHint; opened?: boolean };

const TYPE = { ping: 1, pong: 2, callMeMaybe: 3 } as const;

export function isDisco(b: Buffer): boolean {
  return b.length >= HEADER_LEN + BOX_NONCE_LEN + BOX_OVERHEAD && b[0] === 0x6d && b.subarray(0, DISCO_MAGIC.length).equals(DISCO_MAGIC);
}

/** The sender's disco public key, read before the box is opened (to pick the key). */
export function discoSender(b: Buffer): Buffer {
  return b.subarray(DISCO_MAGIC.length, HEADER_LEN);
}

function encodeAddr(a: { address: string; port: number }, out: Buffer, off: number): void {
  if (a.address.includes(':')) writeIpv6(a.address, out, off);
  else {
    out.writeUInt16BE(0xffff, off + 10);
    a.address.split('.').forEach((o, i) => (out[off + 12 + i] = Number(o)));
  }
  out.writeUInt16BE(a.port, off + 16);
}

function decodeAddr(b: Buffer, off: number): { address: string; port: number } {
  const port = b.readUInt16BE(off + 16);
  const mapped = b.subarray(off, off + 10).every((x) => x === 0) && b.readUInt16BE(off + 10) === 0xffff;
  if (mapped) return { address: [...b.subarray(off + 12, off + 16)].join('.'), port };
  return { address: readIpv6(b, off), port };
}

function encodeBody(m: DiscoMessage): Buffer {
  switch (m.type) {
    case 'ping':
      return Buffer.concat([Buffer.of(TYPE.ping, VERSION), m.txid, m.nodeKey]);
    case 'pong': {
      const b = Buffer.alloc(2 + TXID_LEN + ADDR_LEN);
      b[0] = TYPE.pong;
      b[1] = VERSION;
      m.txid.copy(b, 2);
      encodeAddr(m.src, b, 2 + TXID_LEN);
      return b;
    }
    case 'callMeMaybe': {
      const eps = m.endpoints.slice(0, MAX_CALL_ME_MAYBE);
      const b = Buffer.alloc(2 + eps.length * ADDR_LEN);
      b[0] = TYPE.callMeMaybe;
      b[1] =
        VERSION |
        (m.nat ? NAT_FLAG_KNOWN | (m.nat.mapping === 'hard' ? NAT_FLAG_HARD : 0) | (m.nat.predict ? NAT_FLAG_PREDICT : 0) : 0) |
        (m.opened ? FLAG_OPENED : 0);
      eps.forEach((e, i) => encodeAddr(e, b, 2 + i * ADDR_LEN));
      return b;
    }
  }
}

/** Parses an opened body; null when it is malformed (the caller counts it). */
export function decodeBody(b: Buffer): DiscoMessage | null {
  if (b.length < 2) return null;
  switch (b[0]) {
    case TYPE.ping:
      return b.length >= 2 + TXID_LEN + 32
        ? { type: 'ping', txid: Buffer.from(b.subarray(2, 2 + TXID_LEN)), nodeKey: Buffer.from(b.subarray(2 + TXID_LEN, 2 + TXID_LEN + 32)) }
        : null;
    case TYPE.pong:
      return b.length >= 2 + TXID_LEN + ADDR_LEN ? { type: 'pong', txid: Buffer.from(b.subarray(2, 2 + TXID_LEN)), src: decodeAddr(b, 2 + TXID_LEN) } : null;
    case TYPE.callMeMaybe: {
      if ((b.length - 2) % ADDR_LEN !== 0) return null;
      const endpoints = [];
      for (let off = 2; off < b.length && endpoints.length < MAX_CALL_ME_MAYBE; off += ADDR_LEN) endpoints.push(decodeAddr(b, off));
      const f = b[1]!;
      return {
        type: 'callMeMaybe',
        endpoints,
        ...(f & NAT_FLAG_KNOWN ? { nat: { mapping: f & NAT_FLAG_HARD ? 'hard' : 'easy', predict: (f & NAT_FLAG_PREDICT) !== 0 } } : {}),
        ...(f & FLAG_OPENED ? { opened: true } : {}),
      };
    }
    default:
      return null;
  }
}

export function sealDisco(m: DiscoMessage, senderDiscoPublic: Buffer, sharedKey: Uint8Array): Buffer {
  return Buffer.concat([DISCO_MAGIC, senderDiscoPublic, sealBox(sharedKey, encodeBody(m))]);
}

/** Opens a disco packet with the key shared with its sender; null if it fails authentication or parsing. */
export function openDisco(b: Buffer, sharedKey: Uint8Array): DiscoMessage | null {
  const plain = openBox(sharedKey, b.subarray(HEADER_LEN));
  return plain ? decodeBody(plain) : null;
}
