// STUN (RFC 5389) binding requests and responses: the subset NAT discovery
// needs. Pure codec, no I/O. A node asks a STUN server what address and port
// its packets arrive from; asking two servers tells whether the NAT maps every
// destination to the same port (endpoint-independent, "easy") or not ("hard").
import { randomBytes } from 'node:crypto';
import { readIpv6, writeIpv6 } from '../util/ip.js';

export const STUN_MAGIC = 0x2112a442;
const HEADER = 20;
const BINDING_REQUEST = 0x0001;
const BINDING_SUCCESS = 0x0101;
const ATTR_MAPPED_ADDRESS = 0x0001;
const ATTR_XOR_MAPPED_ADDRESS = 0x0020;
const ATTR_SOFTWARE = 0x8022;
const ATTR_FINGERPRINT = 0x8028;
const FINGERPRINT_XOR = 0x5354554e;

let crcTable: Uint32Array | null = null;
function crc32(b: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = crcTable[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** True when `b` looks like STUN (magic cookie in place): cheap demultiplexing from WireGuard and disco. */
export function isStun(b: Buffer): boolean {
  return b.length >= HEADER && (b[0]! & 0xc0) === 0 && b.readUInt32BE(4) === STUN_MAGIC;
}

function withFingerprint(msg: Buffer): Buffer {
  // the length field must already count the fingerprint attribute when the CRC is taken
  const out = Buffer.alloc(msg.length + 8);
  msg.copy(out);
  out.writeUInt16BE(msg.length - HEADER + 8, 2);
  out.writeUInt16BE(ATTR_FINGERPRINT, msg.length);
  out.writeUInt16BE(4, msg.length + 2);
  out.writeUInt32BE((crc32(out.subarray(0, msg.length)) ^ FINGERPRINT_XOR) >>> 0, msg.length + 4);
  return out;
}

export function bindingRequest(txid: Buffer = randomBytes(12)): { txid: Buffer; packet: Buffer } {
  const software = Buffer.from('meshctl');
  const pad = (4 - (software.length % 4)) % 4;
  const msg = Buffer.alloc(HEADER + 4 + software.length + pad);
  msg.writeUInt16BE(BINDING_REQUEST, 0);
  msg.writeUInt16BE(msg.length - HEADER, 2);
  msg.writeUInt32BE(STUN_MAGIC, 4);
  txid.copy(msg, 8);
  msg.writeUInt16BE(ATTR_SOFTWARE, HEADER);
  msg.writeUInt16BE(software.length, HEADER + 2);
  software.copy(msg, HEADER + 4);
  return { txid, packet: withFingerprint(msg) };
}

export interface StunAddress {
  address: string;
  port: number;
}

function encodeXorAddress(a: StunAddress, txid: Buffer): Buffer {
  const v6 = a.address.includes(':');
  const out = Buffer.alloc(4 + (v6 ? 16 : 4) + 4);
  out.writeUInt16BE(ATTR_XOR_MAPPED_ADDRESS, 0);
  out.writeUInt16BE(v6 ? 20 : 8, 2);
  const body = out.subarray(4);
  body[1] = v6 ? 2 : 1;
  body.writeUInt16BE(a.port ^ (STUN_MAGIC >>> 16), 2);
  const key = Buffer.concat([Buffer.from([0x21, 0x12, 0xa4, 0x42]), txid]);
  const raw = Buffer.alloc(v6 ? 16 : 4);
  if (v6) writeIpv6(a.address, raw);
  else a.address.split('.').forEach((o, i) => (raw[i] = Number(o)));
  for (let i = 0; i < raw.length; i++) body[4 + i] = raw[i]! ^ key[i]!;
  return out;
}

/** The server's answer to a binding request from `from`. */
export function bindingResponse(txid: Buffer, from: StunAddress): Buffer {
  const attr = encodeXorAddress(from, txid);
  const msg = Buffer.alloc(HEADER + attr.length);
  msg.writeUInt16BE(BINDING_SUCCESS, 0);
  msg.writeUInt16BE(attr.length, 2);
  msg.writeUInt32BE(STUN_MAGIC, 4);
  txid.copy(msg, 8);
  attr.copy(msg, HEADER);
  return withFingerprint(msg);
}

export type StunMessage = { kind: 'request'; txid: Buffer } | { kind: 'response'; txid: Buffer; mapped: StunAddress };

/** Parses a binding request or success response; null for anything else or anything malformed. */
export function parseStun(b: Buffer): StunMessage | null {
  if (!isStun(b)) return null;
  const type = b.readUInt16BE(0);
  const len = b.readUInt16BE(2);
  if (len % 4 !== 0 || HEADER + len > b.length) return null;
  const txid = Buffer.from(b.subarray(8, 20));
  let xor: StunAddress | null = null;
  let plain: StunAddress | null = null;
  for (let off = HEADER; off + 4 <= HEADER + len; ) {
    const at = b.readUInt16BE(off);
    const alen = b.readUInt16BE(off + 2);
    const body = b.subarray(off + 4, off + 4 + alen);
    if (body.length !== alen) return null;
    if (at === ATTR_FINGERPRINT) {
      if (alen !== 4 || (crc32(b.subarray(0, off)) ^ FINGERPRINT_XOR) >>> 0 !== body.readUInt32BE(0)) return null;
    } else if ((at === ATTR_XOR_MAPPED_ADDRESS || at === ATTR_MAPPED_ADDRESS) && alen >= 8) {
      const family = body[1];
      const isXor = at === ATTR_XOR_MAPPED_ADDRESS;
      let port = body.readUInt16BE(2);
      if (isXor) port ^= STUN_MAGIC >>> 16;
      const key = Buffer.concat([Buffer.from([0x21, 0x12, 0xa4, 0x42]), txid]);
      let addr: string | null = null;
      if (family === 1 && alen === 8) {
        const raw = Buffer.from(body.subarray(4, 8));
        if (isXor) for (let i = 0; i < 4; i++) raw[i]! ^= key[i]!;
        addr = [...raw].join('.');
      } else if (family === 2 && alen === 20) {
        const raw = Buffer.from(body.subarray(4, 20));
        if (isXor) for (let i = 0; i < 16; i++) raw[i]! ^= key[i]!;
        addr = readIpv6(raw);
      }
      if (addr) isXor ? (xor = { address: addr, port }) : (plain = { address: addr, port });
    }
    off += 4 + alen + ((4 - (alen % 4)) % 4);
  }
  if (type === BINDING_REQUEST) return { kind: 'request', txid };
  if (type === BINDING_SUCCESS) {
    const mapped = xor ?? plain;
    return mapped ? { kind: 'response', txid, mapped } : null;
  }
  return null;
}
