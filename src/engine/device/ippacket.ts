// The few facts the engine reads from inner IP packets: version, addresses and
// the length the header claims (so padding added by WireGuard is cut off).
import { isIPv4, isIPv6 } from 'node:net';
import { getU16be } from '../../util/bytes.js';

export const IPV4_HEADER_MIN = 20;
export const IPV6_HEADER_LEN = 40;

// Addresses are given as offsets into the packet, not views of it: this runs per
// packet, and every view is garbage (docs/performance.md, "Per-packet garbage").

/** Where an IP packet's destination address starts (its length: addressLength), or -1 if it is not IP. */
export function destinationOffset(p: Buffer): number {
  const v = p.length > 0 ? p[0]! >> 4 : 0;
  if (v === 4 && p.length >= IPV4_HEADER_MIN) return 16;
  if (v === 6 && p.length >= IPV6_HEADER_LEN) return 24;
  return -1;
}

/** Where its source address starts, or -1 if it is not IP. */
export function sourceOffset(p: Buffer): number {
  const v = p.length > 0 ? p[0]! >> 4 : 0;
  if (v === 4 && p.length >= IPV4_HEADER_MIN) return 12;
  if (v === 6 && p.length >= IPV6_HEADER_LEN) return 8;
  return -1;
}

/** The address length, 4 or 16, of a packet the offset functions accepted. */
export function addressLength(p: Buffer): 4 | 16 {
  return p[0]! >> 4 === 4 ? 4 : 16;
}

/** The packet's own length from its header, or -1 if the header is bad or longer than the buffer. */
export function claimedLength(p: Buffer): number {
  return claimedLengthAt(p, 0, p.length);
}

/** claimedLength of the `avail` bytes of `buf` from `off`, where a decrypted packet lies in reused memory. */
export function claimedLengthAt(buf: Buffer, off: number, avail: number): number {
  const v = avail > 0 ? buf[off]! >> 4 : 0;
  let len = -1;
  if (v === 4 && avail >= IPV4_HEADER_MIN) len = getU16be(buf, off + 2);
  else if (v === 6 && avail >= IPV6_HEADER_LEN) len = IPV6_HEADER_LEN + getU16be(buf, off + 4);
  return len > avail || len < (v === 4 ? IPV4_HEADER_MIN : IPV6_HEADER_LEN) ? -1 : len;
}

export function ipToBytes(text: string): Buffer {
  if (isIPv4(text)) return Buffer.from(text.split('.').map(Number));
  if (!isIPv6(text)) throw new Error(`not an IP address: ${text}`);
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const parseGroups = (s: string | undefined): number[] => {
    if (!s) return [];
    const out: number[] = [];
    for (const g of s.split(':')) {
      if (g.includes('.')) {
        const b = g.split('.').map(Number);
        out.push((b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!);
      } else out.push(parseInt(g, 16));
    }
    return out;
  };
  const h = parseGroups(head);
  const t = parseGroups(tail);
  const groups = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(g, i * 2));
  return b;
}

export function bytesToIp(b: Buffer): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  // compress the longest run of zero groups, as RFC 5952 asks
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}
