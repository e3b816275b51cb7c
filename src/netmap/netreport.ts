// The network report's shape: what netcheck (src/nat/netcheck.ts) measures and
// what the local API hands the CLI inside its netcheck answer. It lives here,
// beside the other shapes shared across layers, because nat and the local API
// types may not import each other: the CLI reads the local API types only.

export interface NetReport {
  udp: boolean;
  /** the mapped address of the WireGuard socket, ip:port */
  ipv4: string | null;
  /** the node's IPv6 endpoint as a relay's STUN server saw it, [ip]:port; null when no IPv6 STUN answered */
  ipv6?: string | null;
  /** true: the NAT maps each destination to a different port (endpoint-dependent mapping) */
  mappingVariesByDestIP: boolean | null;
  regionLatencyMs: Record<string, number>;
  preferredRegion: string | null;
  /** distinct mapped addresses seen, one per STUN server that answered */
  mapped: { region: string; server: string; mapped: string }[];
  portMapping: string[];
  at: string;
}
