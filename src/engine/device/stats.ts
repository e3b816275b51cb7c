// Counters the engine keeps instead of throwing: every dropped datagram or
// packet lands in exactly one `dropped` reason, so garbage is visible, never fatal.

export const DROP_REASONS = [
  'short',
  'unknownType',
  'badSize',
  'badMac1',
  'badMac2',
  'cookieRequired',
  'rateLimited',
  'handshake',
  'staleTimestamp',
  'handshakeFlood',
  'unknownIndex',
  'expired',
  'decrypt',
  'replay',
  'badInnerPacket',
  'disallowedSource',
  'noRoute',
  'noKeypair',
  'noEndpoint',
  'tooLarge',
  /** dropped by an inbound packet-filter hook (filter.ts) */
  'filteredIn',
  /** dropped by an outbound packet-filter hook */
  'filteredOut',
  'internalError',
] as const;

export type DropReason = (typeof DROP_REASONS)[number];

export interface EngineStats {
  /** sessions (keypairs) derived from completed handshakes, either role */
  sessions: number;
  /**
   * handshake initiations this node sent (retries included), peers given up on after REKEY_ATTEMPT_TIME, and
   * initiations resent because a way to the peer opened that the pending one had not taken (peer-handshake.ts)
   */
  handshakes: { initiated: number; failed: number; resentOnPath: number };
  rx: { packets: number; bytes: number };
  tx: { packets: number; bytes: number };
  /** packets from the TUN handed to a peer (data, not keepalives or handshakes) */
  routed: number;
  dropped: Record<DropReason, number>;
}

export function newStats(): EngineStats {
  const dropped = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
  return {
    sessions: 0,
    handshakes: { initiated: 0, failed: 0, resentOnPath: 0 },
    rx: { packets: 0, bytes: 0 },
    tx: { packets: 0, bytes: 0 },
    routed: 0,
    dropped,
  };
}
