// Domain names as the resolver compares them: lower case, no trailing dot,
// checked for the shape a query may carry, and the reverse-lookup names of
// IP addresses (in-addr.arpa, ip6.arpa) in both directions.
import { ipBytes, type IpAddress, type IpPrefix } from '../util/netaddr.js';

/** Longest name (presentation form, no trailing dot) a query may ask: RFC 1035 allows 255 wire bytes, which is 253 characters. */
export const MAX_NAME_CHARS = 253;
/** Longest label: RFC 1035. */
export const MAX_LABEL_CHARS = 63;

/** A host-name label: letters, digits and inner hyphens (RFC 1123); lower case once canonical. */
const HOST_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** A label a query may carry: printable ASCII without space or dot (underscore names such as _srv._tcp included). */
const QUERY_LABEL = /^[\x21-\x2d\x2f-\x7e]{1,63}$/;

/** The canonical form of a name: lower case, no trailing dot; the root is ''. */
export function canonicalName(name: string): string {
  const n = name.endsWith('.') ? name.slice(0, -1) : name;
  return n === '.' ? '' : n.toLowerCase();
}

/** True when `name` (canonical) is a name a query may ask: at most MAX_NAME_CHARS, every label printable and 1-63 chars. */
export function isQueryName(name: string): boolean {
  if (name === '') return true;
  if (name.length > MAX_NAME_CHARS) return false;
  for (const label of name.split('.')) if (!QUERY_LABEL.test(label)) return false;
  return true;
}

/** True when `name` (canonical) is a host name: LDH labels, at most MAX_NAME_CHARS. */
export function isHostName(name: string): boolean {
  if (name.length === 0 || name.length > MAX_NAME_CHARS) return false;
  for (const label of name.split('.')) if (!HOST_LABEL.test(label)) return false;
  return true;
}

/** True when `name` is `zone` or a name under it (both canonical). */
export function isAtOrUnder(name: string, zone: string): boolean {
  if (zone === '') return true;
  return name === zone || (name.length > zone.length && name.endsWith(zone) && name[name.length - zone.length - 1] === '.');
}

/** The reverse-lookup name of an address: `d.c.b.a.in-addr.arpa` or 32 nibbles then `ip6.arpa`. */
export function reverseName(address: IpAddress): string {
  const b = ipBytes(address);
  if (address.family === 4) return `${b[3]}.${b[2]}.${b[1]}.${b[0]}.in-addr.arpa`;
  const nibbles: string[] = [];
  for (let i = 15; i >= 0; i--) nibbles.push((b[i]! & 0xf).toString(16), (b[i]! >> 4).toString(16));
  return `${nibbles.join('.')}.ip6.arpa`;
}

/**
 * The reverse zones that together cover `prefix` exactly, one per value of the
 * bits between the prefix length and the next label boundary (8 bits a label
 * for IPv4, 4 for IPv6): 100.64.0.0/10 is `64.100.in-addr.arpa` to
 * `127.100.in-addr.arpa`. Used as routing domains, so reverse lookups of mesh
 * addresses reach the mesh resolver. At most 2^7 zones for IPv4, 2^3 for IPv6.
 */
export function reverseZones(prefix: IpPrefix): string[] {
  const step = prefix.address.family === 4 ? 8 : 4;
  const labels = Math.ceil(prefix.bits / step);
  const spare = labels * step - prefix.bits;
  const b = ipBytes(prefix.address);
  const unit = (i: number): number => (step === 8 ? b[i]! : i % 2 === 0 ? b[i >> 1]! >> 4 : b[i >> 1]! & 0xf);
  const zones: string[] = [];
  for (let v = 0; v < 1 << spare; v++) {
    const parts: string[] = [];
    for (let i = 0; i < labels; i++) {
      let u = unit(i);
      if (i === labels - 1) u = (u & ~((1 << spare) - 1)) | v;
      parts.push(step === 8 ? String(u) : u.toString(16));
    }
    zones.push(`${parts.reverse().join('.')}${parts.length ? '.' : ''}${step === 8 ? 'in-addr.arpa' : 'ip6.arpa'}`);
  }
  return zones;
}

/** What a reverse name stands for: the first `bits` bits of an address (a whole address when bits is 32 or 128). */
export interface ReversePrefix {
  family: 4 | 6;
  /** 4 or 16 bytes, the bits past `bits` zero */
  bytes: Buffer;
  bits: number;
}

/**
 * The prefix a name under in-addr.arpa or ip6.arpa stands for (`64.100.in-addr.arpa`
 * is 100.64.0.0/16), or null for any other name or a label that is not an octet
 * (decimal, no leading zero) or a nibble (one hex digit).
 */
export function parseReverseName(name: string): ReversePrefix | null {
  if (isAtOrUnder(name, 'in-addr.arpa')) {
    const labels = name === 'in-addr.arpa' ? [] : name.slice(0, -'.in-addr.arpa'.length).split('.');
    if (labels.length > 4) return null;
    const bytes = Buffer.alloc(4);
    for (let i = 0; i < labels.length; i++) {
      const l = labels[labels.length - 1 - i]!;
      if (!/^(0|[1-9]\d{0,2})$/.test(l) || Number(l) > 255) return null;
      bytes[i] = Number(l);
    }
    return { family: 4, bytes, bits: labels.length * 8 };
  }
  if (isAtOrUnder(name, 'ip6.arpa')) {
    const labels = name === 'ip6.arpa' ? [] : name.slice(0, -'.ip6.arpa'.length).split('.');
    if (labels.length > 32) return null;
    const bytes = Buffer.alloc(16);
    for (let i = 0; i < labels.length; i++) {
      const l = labels[labels.length - 1 - i]!;
      if (!/^[0-9a-f]$/.test(l)) return null;
      const v = Number.parseInt(l, 16);
      bytes[i >> 1]! |= i % 2 === 0 ? v << 4 : v;
    }
    return { family: 6, bytes, bits: labels.length * 4 };
  }
  return null;
}
