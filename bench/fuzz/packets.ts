// IP/TCP/UDP packets for the offload targets: valid ones built from random
// fields (with their own checksum code, independent of src/tun), and checks
// of the headers the code under test wrote.
import type { Rng } from './rng.js';

export const PROTO_TCP = 6;
export const PROTO_UDP = 17;
export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

/** The ones'-complement sum of b[start..end) as big-endian words, folded to 16 bits. */
export function csum(b: Uint8Array, start: number, end: number, initial = 0): number {
  let s = initial;
  for (let i = start; i < end; i += 2) s += (b[i]! << 8) | (i + 1 < end ? b[i + 1]! : 0);
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

export function pseudoSum(p: Uint8Array, proto: number, l4Len: number): number {
  const v6 = p[0]! >> 4 === 6;
  return csum(p, v6 ? 8 : 12, v6 ? 40 : 20) + proto + l4Len;
}

/** True when the TCP/UDP checksum of the L4 part starting at `l4` verifies. */
export function l4ChecksumOk(p: Uint8Array, l4: number, proto: number): boolean {
  return csum(p, l4, p.length, pseudoSum(p, proto, p.length - l4)) === 0xffff;
}

export function ipv4HeaderOk(p: Uint8Array): boolean {
  return csum(p, 0, (p[0]! & 15) * 4) === 0xffff;
}

export interface TcpFields {
  v6: boolean;
  src: Buffer;
  dst: Buffer;
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  id: number;
  /** IPv6 flow label (one per flow) */
  flowLabel: number;
  tos: number;
  ttl: number;
  /** IPv4 options (multiple of 4, ≤ 40 bytes) */
  ipOptions: Buffer;
  /** TCP options (multiple of 4, ≤ 40 bytes) */
  tcpOptions: Buffer;
  payload: Buffer;
}

export function randomTcpFields(rng: Rng, v6 = rng.bool()): TcpFields {
  return {
    v6,
    src: rng.bytes(v6 ? 16 : 4),
    dst: rng.bytes(v6 ? 16 : 4),
    sport: rng.int(65536),
    dport: rng.int(65536),
    seq: rng.u32(),
    ack: rng.u32(),
    flags: TCP_ACK,
    window: rng.int(65536),
    id: rng.int(65536),
    flowLabel: rng.int(0x100000),
    tos: rng.chance(0.8) ? 0 : rng.int(256),
    ttl: rng.range(1, 255),
    ipOptions: Buffer.alloc(0),
    tcpOptions: rng.chance(0.5) ? Buffer.alloc(0) : rng.bytes(4 * rng.range(1, 10)),
    payload: Buffer.alloc(0),
  };
}

/** A TCP packet with correct IP length, IPv4 header checksum and TCP checksum. */
export function buildTcp(f: TcpFields): Buffer {
  const ipLen = f.v6 ? 40 : 20 + f.ipOptions.length;
  const tcpLen = 20 + f.tcpOptions.length;
  const p = Buffer.alloc(ipLen + tcpLen + f.payload.length);
  if (f.v6) {
    p.writeUInt32BE(((6 << 28) | (f.tos << 20) | (f.flowLabel & 0xfffff)) >>> 0, 0);
    p.writeUInt16BE(p.length - 40, 4);
    p[6] = PROTO_TCP;
    p[7] = f.ttl;
    f.src.copy(p, 8);
    f.dst.copy(p, 24);
  } else {
    p[0] = 0x40 | (ipLen / 4);
    p[1] = f.tos;
    p.writeUInt16BE(p.length, 2);
    p.writeUInt16BE(f.id, 4);
    p[6] = 0x40; // DF
    p[8] = f.ttl;
    p[9] = PROTO_TCP;
    f.src.copy(p, 12);
    f.dst.copy(p, 16);
    f.ipOptions.copy(p, 20);
    p.writeUInt16BE(~csum(p, 0, ipLen) & 0xffff, 10);
  }
  const t = ipLen;
  p.writeUInt16BE(f.sport, t);
  p.writeUInt16BE(f.dport, t + 2);
  p.writeUInt32BE(f.seq >>> 0, t + 4);
  p.writeUInt32BE(f.ack >>> 0, t + 8);
  p[t + 12] = (tcpLen / 4) << 4;
  p[t + 13] = f.flags;
  p.writeUInt16BE(f.window, t + 14);
  f.tcpOptions.copy(p, t + 20);
  f.payload.copy(p, t + tcpLen);
  p.writeUInt16BE(~csum(p, t, p.length, pseudoSum(p, PROTO_TCP, p.length - t)) & 0xffff, t + 16);
  return p;
}

/** A UDP packet with a correct checksum. */
export function buildUdp(rng: Rng, v6: boolean, payload: Buffer): Buffer {
  const f = randomTcpFields(rng, v6);
  const ipLen = v6 ? 40 : 20;
  const p = Buffer.alloc(ipLen + 8 + payload.length);
  if (v6) {
    p[0] = 0x60;
    p.writeUInt16BE(p.length - 40, 4);
    p[6] = PROTO_UDP;
    p[7] = 64;
    f.src.copy(p, 8);
    f.dst.copy(p, 24);
  } else {
    p[0] = 0x45;
    p.writeUInt16BE(p.length, 2);
    p[8] = 64;
    p[9] = PROTO_UDP;
    f.src.copy(p, 12);
    f.dst.copy(p, 16);
    p.writeUInt16BE(~csum(p, 0, 20) & 0xffff, 10);
  }
  p.writeUInt16BE(f.sport, ipLen);
  p.writeUInt16BE(f.dport, ipLen + 2);
  p.writeUInt16BE(p.length - ipLen, ipLen + 4);
  payload.copy(p, ipLen + 8);
  let c = ~csum(p, ipLen, p.length, pseudoSum(p, PROTO_UDP, p.length - ipLen)) & 0xffff;
  if (c === 0) c = 0xffff;
  p.writeUInt16BE(c, ipLen + 6);
  return p;
}
