// IPv6 addresses between text and 16 bytes, for the codecs that carry them
// raw (STUN, disco, sockaddr for sendmmsg/recvmmsg).

/** Writes the 16 bytes of an IPv6 address (text, :: allowed) at `off`. */
export function writeIpv6(ip: string, out: Uint8Array, off = 0): void {
  const [head = '', tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  for (let i = 0; i < 8; i++) {
    const g = parseInt(groups[i] ?? '0', 16) || 0;
    out[off + i * 2] = g >> 8;
    out[off + i * 2 + 1] = g & 255;
  }
}

/** RFC 5952 text of 16 bytes at `off` (the URL parser canonicalises it). */
export function readIpv6(b: Uint8Array, off = 0): string {
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(((b[off + i * 2]! << 8) | b[off + i * 2 + 1]!).toString(16));
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}
