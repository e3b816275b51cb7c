// A UDP endpoint as the engine sees it: the source of an authenticated packet
// or a configured peer address. Kept as a small value type so path selection
// (direct vs relay) can later carry more than ip:port.

export interface Endpoint {
  /** IPv4 dotted quad or IPv6 text without brackets (no ::ffff: mapping) */
  address: string;
  port: number;
}

export function endpointKey(ep: Endpoint): string {
  return ep.address.includes(':') ? `[${ep.address}]:${ep.port}` : `${ep.address}:${ep.port}`;
}

export function endpointEquals(a: Endpoint | null, b: Endpoint | null): boolean {
  return a !== null && b !== null && a.port === b.port && a.address === b.address;
}

/** dgram reports IPv4 peers of a dual-stack socket as ::ffff:a.b.c.d */
export function normaliseAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
