// The destination check on decrypted packets. WireGuard's cryptokey routing
// checks only a packet's source (it must be one of the sending peer's
// AllowedIPs); a node that forwards (a subnet router, an exit node, a device
// gateway) must also refuse packets whose destination it does not serve,
// otherwise a peer can send through it to any network the node can reach, a
// rejected route included. The filter is one longest-prefix lookup of the
// destination in a trie (allowedips.ts) per packet: no allocation, no strings.
import { AllowedIps } from './allowedips.js';
import { addressLength, destinationOffset } from './ippacket.js';
import type { PacketHook } from './filter.js';
import type { IpPrefix } from '../../util/netaddr.js';

/** What a node accepts from its peers, by destination. */
export interface DestinationPolicy {
  /** destinations served here: this node's addresses, its approved primary routes, addresses of devices it gateways */
  prefixes: readonly IpPrefix[];
  /** an approved exit node takes any IPv4 destination (0.0.0.0/0) */
  anyV4?: boolean;
  /** … and any IPv6 destination (::/0) */
  anyV6?: boolean;
}

/** Drop counts of one filter, read by status. */
export interface DestinationFilterStats {
  /** decrypted packets dropped because their destination is not served here */
  droppedDestination: number;
}

/**
 * An inbound hook (PacketFilterHooks.filterIn) that passes a packet only when its destination is in `policy`; a
 * packet that is not IPv4/IPv6 is dropped too. `stats` is updated in place.
 */
export function destinationFilter(policy: DestinationPolicy, stats: DestinationFilterStats): PacketHook {
  const trie = new AllowedIps<true>();
  for (const p of policy.prefixes) trie.insert(p.address.text, p.bits, true);
  if (policy.anyV4) trie.insert('0.0.0.0', 0, true);
  if (policy.anyV6) trie.insert('::', 0, true);
  return (pkt) => {
    const off = destinationOffset(pkt);
    if (off >= 0 && trie.lookupAt(pkt, off, addressLength(pkt)) === true) return true;
    stats.droppedDestination++;
    return false;
  };
}
