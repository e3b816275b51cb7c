// The packet-filter seam: hooks on the device's two packet paths, where an
// access-control filter (and features such as DNS interception) plug in
// without touching the device. The shape is that of Tailscale's net/tstun
// Wrapper, which runs a pre-filter stage, the filter, then a post-filter stage
// in each direction. Inbound hooks see a decrypted packet whose source address
// AllowedIPs has already matched to its peer, just before it is written to the
// TUN device; outbound hooks see a packet read from the TUN device, before it
// is routed to a peer and encrypted. With no hook installed (the default) every
// packet passes and the device tests one null field per packet, calling nothing.

/**
 * One stage: true lets the packet go on, false drops it (the device counts it).
 * `pkt` is one IP packet; its memory is reused once the hook returns, so a hook
 * that needs it later copies it.
 */
export type PacketHook = (pkt: Buffer) => boolean;

/** The stages of both directions, each optional, run in the order listed. */
export interface PacketFilterHooks {
  /** inbound, before the filter (Tailscale: PreFilterPacketInboundFromWireGuard) */
  preFilterIn?: PacketHook;
  /** the inbound rules */
  filterIn?: PacketHook;
  /** inbound, on what the filter accepted (Tailscale: PostFilterPacketInboundFromWireGuard) */
  postFilterIn?: PacketHook;
  /** outbound, before the filter (Tailscale: PreFilterPacketOutboundToWireGuardEngineIntercept) */
  preFilterOut?: PacketHook;
  /** the outbound rules */
  filterOut?: PacketHook;
  /** outbound, on what the filter accepted (Tailscale: PostFilterPacketOutboundToWireGuard) */
  postFilterOut?: PacketHook;
}

/** One direction's stages as a single hook, or null when it has none (then the device calls nothing). */
export function chainHooks(stages: readonly (PacketHook | undefined)[]): PacketHook | null {
  const s = stages.filter((h): h is PacketHook => h !== undefined);
  if (s.length === 0) return null;
  if (s.length === 1) return s[0]!;
  return (pkt) => {
    for (let i = 0; i < s.length; i++) if (!s[i]!(pkt)) return false;
    return true;
  };
}
