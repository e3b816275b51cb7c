// Typed, canonical IP addresses, prefixes and endpoints parsed from untrusted
// text (the control server's maps, the state files, requests from nodes).
// Anything that reaches the OS or a peer is rendered from these values, never
// from the text that came in: a parse accepts exactly one spelling of an
// address family's syntax and nothing around it (no zone, no spaces, no
// newline), and `text` is the canonical form (RFC 5952 for IPv6).
import { isIPv4, isIPv6 } from 'node:net';
import { writeIpv6 } from './ip.js';

export type IpFamily = 4 | 6;

export interface IpAddress {
  readonly family: IpFamily;
  /** canonical text: dotted quad, or RFC 5952 IPv6 */
  readonly text: string;
}

export interface IpPrefix {
  readonly address: IpAddress;
  readonly bits: number;
  /** canonical `address/bits`, the address as given (host bits may be set) */
  readonly text: string;
}

export interface IpEndpoint {
  readonly address: IpAddress;
  readonly port: number;
  /** `a.b.c.d:port` or `[v6]:port` */
  readonly text: string;
}

/** Longest text any of these parsers looks at; longer input is refused before any work. */
const MAX_TEXT = 64;

export class AddressSyntaxError extends Error {
  override readonly name = 'AddressSyntaxError';
}

function quote(text: unknown): string {
  const s = typeof text === 'string' ? text : typeof text;
  const shown = JSON.stringify(s.length > MAX_TEXT ? `${s.slice(0, MAX_TEXT)}…` : s);
  return shown;
}

/** A strict IPv4 or IPv6 address (no zone, no brackets). Throws AddressSyntaxError. */
export function parseIp(text: unknown): IpAddress {
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_TEXT) throw new AddressSyntaxError(`not an IP address: ${quote(text)}`);
  if (isIPv4(text)) return { family: 4, text };
  if (isIPv6(text) && /^[0-9A-Fa-f:.]+$/.test(text)) {
    // the WHATWG URL parser gives the RFC 5952 form (lower case, longest zero run as ::)
    const canon = new URL(`http://[${text}]/`).hostname.slice(1, -1);
    return { family: 6, text: canon };
  }
  throw new AddressSyntaxError(`not an IP address: ${quote(text)}`);
}

/** `address/bits` with 0 ≤ bits ≤ 32 or 128. Throws AddressSyntaxError. */
export function parsePrefix(text: unknown): IpPrefix {
  if (typeof text !== 'string' || text.length > MAX_TEXT) throw new AddressSyntaxError(`not an IP prefix: ${quote(text)}`);
  const slash = text.indexOf('/');
  if (slash < 0) throw new AddressSyntaxError(`not an IP prefix (no /bits): ${quote(text)}`);
  const address = parseIp(text.slice(0, slash));
  const bitsText = text.slice(slash + 1);
  const max = address.family === 4 ? 32 : 128;
  if (!/^(0|[1-9]\d{0,2})$/.test(bitsText) || Number(bitsText) > max) throw new AddressSyntaxError(`not an IP prefix (bits must be 0-${max}): ${quote(text)}`);
  const bits = Number(bitsText);
  return { address, bits, text: `${address.text}/${bits}` };
}

/** A single host as a prefix: /32 or /128. */
export function hostPrefix(address: IpAddress): IpPrefix {
  const bits = address.family === 4 ? 32 : 128;
  return { address, bits, text: `${address.text}/${bits}` };
}

/** `a.b.c.d:port` or `[v6]:port`, port 1-65535. Throws AddressSyntaxError. */
export function parseIpEndpoint(text: unknown): IpEndpoint {
  if (typeof text !== 'string' || text.length > MAX_TEXT + 8) throw new AddressSyntaxError(`not an IP:port endpoint: ${quote(text)}`);
  const m = /^(?:\[([^\]]+)\]|([0-9.]+)):(\d{1,5})$/.exec(text);
  if (!m) throw new AddressSyntaxError(`not an IP:port endpoint: ${quote(text)}`);
  const address = parseIp(m[1] ?? m[2]);
  if ((m[1] !== undefined) !== (address.family === 6)) throw new AddressSyntaxError(`not an IP:port endpoint: ${quote(text)}`);
  const port = Number(m[3]);
  if (port < 1 || port > 65535 || String(port) !== m[3]) throw new AddressSyntaxError(`not an IP:port endpoint (port 1-65535): ${quote(text)}`);
  return { address, port, text: address.family === 6 ? `[${address.text}]:${port}` : `${address.text}:${port}` };
}

/** The address's bytes: 4 for IPv4, 16 for IPv6 (canonical IPv6 text has no dotted tail). */
export function ipBytes(address: IpAddress): Buffer {
  if (address.family === 4) return Buffer.from(address.text.split('.').map(Number));
  const out = Buffer.alloc(16);
  writeIpv6(address.text, out);
  return out;
}

/** True when the first `bits` bits of `a` and `b` (address bytes) are the same. */
export function sameLeadingBits(a: Uint8Array, b: Uint8Array, bits: number): boolean {
  const whole = bits >> 3;
  for (let i = 0; i < whole; i++) if (a[i] !== b[i]) return false;
  const rest = bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (a[whole]! & mask) === (b[whole]! & mask);
}

/** Whether `address` lies inside `prefix` (same family, the first `prefix.bits` bits equal). */
export function prefixContains(prefix: IpPrefix, address: IpAddress): boolean {
  return address.family === prefix.address.family && sameLeadingBits(ipBytes(address), ipBytes(prefix.address), prefix.bits);
}

/** Whether two prefixes share any address (same family, one contains the other's network). */
export function prefixesOverlap(a: IpPrefix, b: IpPrefix): boolean {
  return a.address.family === b.address.family && sameLeadingBits(ipBytes(a.address), ipBytes(b.address), Math.min(a.bits, b.bits));
}
