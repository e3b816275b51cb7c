// A UDP endpoint as the engine sees it: the source of an authenticated packet
// or a configured peer address. Kept as a small value type so path selection
// (direct vs relay) can later carry more than ip:port.

export interface Endpoint {
  /** IPv4 dotted quad or IPv6 text without brackets (no ::ffff: mapping) */
  address: string;
  port: number;
  /**
   * on a virtual endpoint that path selection made from a datagram's source (a peer's candidate address):
   * that real address, so a peer whose endpoint is not virtual (a plain WireGuard peer) still roams to it
   */
  readonly direct?: Endpoint;
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

/**
 * A peer whose paths are chosen by path selection gets this endpoint: the
 * device hands its packets to the PathBind, which sends them direct or via a
 * relay. Port 0 never appears on a real endpoint.
 */
const VIRTUAL_PREFIX = 'peer:';
export function virtualEndpoint(nodeKey: Buffer): Endpoint {
  return { address: VIRTUAL_PREFIX + nodeKey.toString('hex'), port: 0 };
}
export function isVirtualEndpoint(ep: Endpoint): boolean {
  return ep.port === 0 && ep.address.startsWith(VIRTUAL_PREFIX);
}

/** The pseudo-endpoint of a relay region, as disco records where a pong came from. */
const RELAY_PREFIX = 'relay:';
export function relayEndpoint(region: string): Endpoint {
  return { address: RELAY_PREFIX + region, port: 0 };
}
export function relayRegionOf(ep: Endpoint): string | null {
  return ep.port === 0 && ep.address.startsWith(RELAY_PREFIX) ? ep.address.slice(RELAY_PREFIX.length) : null;
}
