// Pure codecs of the four WireGuard messages (whitepaper §5.4). No crypto and
// no state: parsing only checks sizes and types, so the receive path can drop
// malformed input before spending any CPU on it.
import { getU32le, putU32le } from '../../util/bytes.js';
import {
  COOKIE_REPLY_SIZE,
  INITIATION_SIZE,
  MESSAGE_COOKIE_REPLY,
  MESSAGE_INITIATION,
  MESSAGE_RESPONSE,
  MESSAGE_TRANSPORT,
  RESPONSE_SIZE,
  TRANSPORT_MIN_SIZE,
} from './constants.js';

export interface Initiation {
  sender: number;
  ephemeral: Buffer;
  encryptedStatic: Buffer;
  encryptedTimestamp: Buffer;
  mac1: Buffer;
  mac2: Buffer;
}

export interface Response {
  sender: number;
  receiver: number;
  ephemeral: Buffer;
  encryptedNothing: Buffer;
  mac1: Buffer;
  mac2: Buffer;
}

export interface CookieReply {
  receiver: number;
  nonce: Buffer;
  encryptedCookie: Buffer;
}

// Byte offsets of the MACs: mac1 covers everything before it, mac2 likewise.
export const INITIATION_MAC1_OFFSET = 116;
export const INITIATION_MAC2_OFFSET = 132;
export const RESPONSE_MAC1_OFFSET = 60;
export const RESPONSE_MAC2_OFFSET = 76;

export type MessageKind = 'initiation' | 'response' | 'cookie' | 'transport';

/** Classifies a datagram, or returns why it is malformed. */
export function classify(b: Buffer): MessageKind | 'short' | 'unknownType' | 'badSize' {
  if (b.length < 4) return 'short';
  // The three reserved bytes must be zero: this is how a WireGuard datagram
  // is told apart from others sharing the socket (disco, STUN).
  if (b[1] !== 0 || b[2] !== 0 || b[3] !== 0) return 'unknownType';
  switch (b[0]) {
    case MESSAGE_INITIATION:
      return b.length === INITIATION_SIZE ? 'initiation' : 'badSize';
    case MESSAGE_RESPONSE:
      return b.length === RESPONSE_SIZE ? 'response' : 'badSize';
    case MESSAGE_COOKIE_REPLY:
      return b.length === COOKIE_REPLY_SIZE ? 'cookie' : 'badSize';
    case MESSAGE_TRANSPORT:
      return b.length >= TRANSPORT_MIN_SIZE ? 'transport' : 'badSize';
    default:
      return 'unknownType';
  }
}

function header(type: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  b[0] = type;
  return b;
}

export function encodeInitiation(m: Initiation): Buffer {
  const b = header(MESSAGE_INITIATION, INITIATION_SIZE);
  b.writeUInt32LE(m.sender, 4);
  m.ephemeral.copy(b, 8);
  m.encryptedStatic.copy(b, 40);
  m.encryptedTimestamp.copy(b, 88);
  m.mac1.copy(b, INITIATION_MAC1_OFFSET);
  m.mac2.copy(b, INITIATION_MAC2_OFFSET);
  return b;
}

export function decodeInitiation(b: Buffer): Initiation {
  return {
    sender: b.readUInt32LE(4),
    ephemeral: b.subarray(8, 40),
    encryptedStatic: b.subarray(40, 88),
    encryptedTimestamp: b.subarray(88, 116),
    mac1: b.subarray(INITIATION_MAC1_OFFSET, INITIATION_MAC2_OFFSET),
    mac2: b.subarray(INITIATION_MAC2_OFFSET, INITIATION_SIZE),
  };
}

export function encodeResponse(m: Response): Buffer {
  const b = header(MESSAGE_RESPONSE, RESPONSE_SIZE);
  b.writeUInt32LE(m.sender, 4);
  b.writeUInt32LE(m.receiver, 8);
  m.ephemeral.copy(b, 12);
  m.encryptedNothing.copy(b, 44);
  m.mac1.copy(b, RESPONSE_MAC1_OFFSET);
  m.mac2.copy(b, RESPONSE_MAC2_OFFSET);
  return b;
}

export function decodeResponse(b: Buffer): Response {
  return {
    sender: b.readUInt32LE(4),
    receiver: b.readUInt32LE(8),
    ephemeral: b.subarray(12, 44),
    encryptedNothing: b.subarray(44, 60),
    mac1: b.subarray(RESPONSE_MAC1_OFFSET, RESPONSE_MAC2_OFFSET),
    mac2: b.subarray(RESPONSE_MAC2_OFFSET, RESPONSE_SIZE),
  };
}

export function encodeCookieReply(m: CookieReply): Buffer {
  const b = header(MESSAGE_COOKIE_REPLY, COOKIE_REPLY_SIZE);
  b.writeUInt32LE(m.receiver, 4);
  m.nonce.copy(b, 8);
  m.encryptedCookie.copy(b, 32);
  return b;
}

export function decodeCookieReply(b: Buffer): CookieReply {
  return { receiver: b.readUInt32LE(4), nonce: b.subarray(8, 32), encryptedCookie: b.subarray(32, 64) };
}

const COUNTER_HIGH_LIMIT = 2 ** 21; // high word beyond this puts the counter past 2^53

// A transport message's fields are read one by one, not decoded into an object:
// this runs per packet (docs/performance.md, "Per-packet garbage").

/** The receiver index of a transport message. */
export function transportReceiver(b: Buffer): number {
  return getU32le(b, 4);
}

/** Its counter: exact below 2^53, Infinity beyond (far past any key's life, so rejected as expired). */
export function transportCounter(b: Buffer): number {
  const high = getU32le(b, 12);
  return high >= COUNTER_HIGH_LIMIT ? Infinity : high * 0x1_0000_0000 + getU32le(b, 8);
}

/** Writes the 16-byte transport header into `out` at `at`. */
export function writeTransportHeader(out: Buffer, receiver: number, counter: number, at = 0): void {
  putU32le(out, at, MESSAGE_TRANSPORT);
  putU32le(out, at + 4, receiver);
  putU32le(out, at + 8, counter >>> 0);
  putU32le(out, at + 12, Math.floor(counter / 0x1_0000_0000));
}
