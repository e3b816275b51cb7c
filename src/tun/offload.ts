// TUN offloads (IFF_VNET_HDR): with TSO the kernel hands over one TCP
// "super-packet" of up to 64 KiB where it would hand over ~45 MTU-sized ones,
// and with GRO-style coalescing we hand it one in return. Every packet on the
// TUN fd is then prefixed with a struct virtio_net_hdr (10 bytes, host byte
// order). WireGuard carries MTU-sized packets with complete checksums, so a
// super-packet is split here (new IP length/ID, TCP sequence, both checksums)
// before encryption. See docs/performance.md ("TUN offloads").
import { getU16le } from '../util/bytes.js';

export const VNET_HDR_LEN = 10;
export const VNET_F_NEEDS_CSUM = 1;
export const GSO_NONE = 0;
export const GSO_TCPV4 = 1;
export const GSO_TCPV6 = 4;
const GSO_ECN = 0x80;

/**
 * A super-packet holds at most 64 KiB and TCP's smallest MSS is 48 bytes
 * (net.ipv4.tcp_min_snd_mss): at most 1366 segments. More means a broken header.
 */
export const MAX_GSO_SEGMENTS = 1366;

export const PROTO_TCP = 6;
const TCP_FIN = 0x01;
export const TCP_PSH = 0x08;
const TCP_CWR = 0x80;
const TCP_CSUM_OFFSET = 16;

export interface VnetHdr {
  flags: number;
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

export function readVnetHdr(b: Uint8Array, off = 0): VnetHdr {
  return {
    flags: b[off]!,
    gsoType: b[off + 1]!,
    hdrLen: getU16le(b, off + 2),
    gsoSize: getU16le(b, off + 4),
    csumStart: getU16le(b, off + 6),
    csumOffset: getU16le(b, off + 8),
  };
}

export function writeVnetHdr(b: Uint8Array, off: number, h: VnetHdr): void {
  const u16 = (i: number, v: number): void => {
    b[off + i] = v & 0xff;
    b[off + i + 1] = v >>> 8;
  };
  b[off] = h.flags;
  b[off + 1] = h.gsoType;
  u16(2, h.hdrLen);
  u16(4, h.gsoSize);
  u16(6, h.csumStart);
  u16(8, h.csumOffset);
}

/** The ones'-complement sum of b[start..end) as big-endian 16-bit words, unfolded. */
export function sum16(b: Uint8Array, start: number, end: number, initial = 0): number {
  let s = initial;
  let i = start;
  // fold every 16k words so the sum stays a small integer (V8 keeps it unboxed)
  while (i + 1 < end) {
    const stop = Math.min(end - 1, i + 32768);
    for (; i < stop; i += 2) s += (b[i]! << 8) | b[i + 1]!;
    s = (s & 0xffff) + Math.floor(s / 0x10000);
  }
  if (i < end) s += b[i]! << 8;
  return s;
}

export function fold(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

/** Sum of the TCP/UDP pseudo-header for a packet whose IP header starts at `ip`. */
export function pseudoHeaderSum(b: Uint8Array, ip: number, proto: number, l4Len: number): number {
  const v6 = b[ip]! >> 4 === 6;
  const s = v6 ? sum16(b, ip + 8, ip + 40) : sum16(b, ip + 12, ip + 20);
  return s + proto + l4Len;
}

function put16(b: Uint8Array, off: number, v: number): void {
  b[off] = v >>> 8;
  b[off + 1] = v & 0xff;
}

function get16(b: Uint8Array, off: number): number {
  return (b[off]! << 8) | b[off + 1]!;
}

function ipv4HeaderChecksum(b: Uint8Array, ip: number, ihl: number): void {
  put16(b, ip + 10, 0);
  put16(b, ip + 10, ~fold(sum16(b, ip, ip + ihl)) & 0xffff);
}

/**
 * Finishes a CHECKSUM_PARTIAL packet: the kernel left the pseudo-header sum in
 * the checksum field and the sum of everything from csumStart on to us.
 * Returns false when the offsets do not fit the packet.
 */
export function completeChecksum(b: Uint8Array, start: number, end: number, csumStart: number, csumOffset: number): boolean {
  const field = start + csumStart + csumOffset;
  if (csumStart < 20 || field + 2 > end) return false;
  let c = ~fold(sum16(b, start + csumStart, end)) & 0xffff;
  // a UDP checksum of 0 means "none"; the same sum is sent as 0xffff (RFC 768)
  if (c === 0 && csumOffset === 6) c = 0xffff;
  put16(b, field, c);
  return true;
}

/** Where a TCP segment's headers end, or -1 if `csumStart` does not point at a plausible TCP header. */
function tcpHeaderEnd(b: Uint8Array, start: number, end: number, csumStart: number): number {
  const tcp = start + csumStart;
  if (tcp + 20 > end) return -1;
  const thl = (b[tcp + 12]! >> 4) * 4;
  return thl < 20 || tcp + thl > end ? -1 : tcp + thl;
}

/**
 * Splits a TCP GSO packet b[start..end) into MTU-sized segments. Each goes
 * where `place(length)` says in `out` (-1 from it stops the split). Returns
 * the number of segments written, or -1 (nothing written) if the packet is
 * malformed or not TCP.
 */
export function gsoSplit(b: Uint8Array, start: number, end: number, h: VnetHdr, out: Uint8Array, place: (len: number) => number): number {
  const kind = h.gsoType & ~GSO_ECN;
  if (kind !== GSO_TCPV4 && kind !== GSO_TCPV6) return -1;
  const hdrEnd = tcpHeaderEnd(b, start, end, h.csumStart);
  if (hdrEnd < 0 || h.gsoSize === 0) return -1;
  const v4 = kind === GSO_TCPV4;
  if (b[start]! >> 4 !== (v4 ? 4 : 6)) return -1;
  const ipLen = h.csumStart;
  // the pseudo-header is read from the IP header: it must not overlap the TCP header it covers
  if (ipLen < (v4 ? 20 : 40)) return -1;
  if (v4 && ((b[start]! & 15) * 4 !== ipLen || b[start + 9] !== PROTO_TCP)) return -1;
  const hdrLen = hdrEnd - start;
  const tcpHdrLen = hdrLen - ipLen;
  const payload = end - hdrEnd;
  const id = v4 ? get16(b, start + 4) : 0;
  const tcp = start + ipLen;
  const seq = ((b[tcp + 4]! << 24) | (b[tcp + 5]! << 16) | (b[tcp + 6]! << 8) | b[tcp + 7]!) >>> 0;
  const flags = b[tcp + 13]!;
  const n = Math.max(1, Math.ceil(payload / h.gsoSize));
  for (let i = 0; i < n; i++) {
    const dataStart = hdrEnd + i * h.gsoSize;
    const dataLen = Math.min(h.gsoSize, end - dataStart);
    const p = place(hdrLen + dataLen);
    if (p < 0) return i;
    out.set(b.subarray(start, hdrEnd), p);
    out.set(b.subarray(dataStart, dataStart + dataLen), p + hdrLen);
    if (v4) {
      put16(out, p + 2, hdrLen + dataLen);
      put16(out, p + 4, (id + i) & 0xffff);
      ipv4HeaderChecksum(out, p, ipLen);
    } else {
      put16(out, p + 4, hdrLen - 40 + dataLen);
    }
    const t = p + ipLen;
    const s = (seq + i * h.gsoSize) >>> 0;
    out[t + 4] = s >>> 24;
    out[t + 5] = (s >>> 16) & 0xff;
    out[t + 6] = (s >>> 8) & 0xff;
    out[t + 7] = s & 0xff;
    let f = flags;
    if (i < n - 1) f &= ~(TCP_FIN | TCP_PSH);
    if (i > 0) f &= ~TCP_CWR;
    out[t + 13] = f;
    put16(out, t + TCP_CSUM_OFFSET, 0);
    const l4Len = tcpHdrLen + dataLen;
    const sum = sum16(out, t, t + l4Len, pseudoHeaderSum(out, p, PROTO_TCP, l4Len));
    put16(out, t + TCP_CSUM_OFFSET, ~fold(sum) & 0xffff);
  }
  return n;
}

/**
 * The IP packets of one read from a TUN fd with virtio headers: a plain packet
 * with its checksum finished (a view of `b`: the engine uses it before the
 * next read, and copies what it keeps), or a super-packet's segments (a new
 * buffer). null if it is unusable.
 */
export function vnetPackets(b: Uint8Array, n: number): { packets: Buffer[]; gso: boolean } | null {
  if (n < VNET_HDR_LEN) return null;
  // the plain packet (every packet of a ping or a quiet flow) is read field by field: no header object
  if (b[1] === GSO_NONE) {
    const p = Buffer.from(b.buffer, b.byteOffset + VNET_HDR_LEN, n - VNET_HDR_LEN);
    if (b[0]! & VNET_F_NEEDS_CSUM && !completeChecksum(p, 0, p.length, getU16le(b, 6), getU16le(b, 8))) return null;
    return { packets: [p], gso: false };
  }
  const h = readVnetHdr(b);
  // room for every segment: the payload once, the headers (IP + at most 60 bytes of TCP) once per segment
  const segments = h.gsoSize > 0 ? Math.ceil((n - VNET_HDR_LEN) / h.gsoSize) : 0;
  if (segments === 0 || segments > MAX_GSO_SEGMENTS) return null;
  const out = Buffer.allocUnsafe(n + segments * Math.min(h.csumStart + 60, n));
  const spans: number[] = [];
  let pos = 0;
  const count = gsoSplit(b, VNET_HDR_LEN, n, h, out, (len) => {
    if (pos + len > out.length) return -1;
    spans.push(pos, len);
    pos += len;
    return pos - len;
  });
  if (count <= 0) return null;
  const packets: Buffer[] = [];
  for (let i = 0; i < spans.length; i += 2) packets.push(out.subarray(spans[i]!, spans[i]! + spans[i + 1]!));
  return { packets, gso: true };
}
