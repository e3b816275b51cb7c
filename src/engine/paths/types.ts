// What path selection knows about each peer, and its timers: shared by the
// peer table (table.ts), the probing (probe.ts) and the choice (choose.ts).
import type { Endpoint } from '../conn/endpoint.js';
import type { PeerSocket } from './peer-socket.js';
import type { PunchState } from './punch.js';

/**
 * Timers of path selection, all on the device's Clock. Tailscale's magicsock (tailscale/wgengine/magicsock) uses
 * heartbeatInterval = 3 s, trustUDPAddrDuration = 6.5 s, sessionActiveTimeout = 45 s, upgradeInterval = 1 min and
 * pingTimeoutDuration = 5 s; meshctl probes faster so that a dead direct path moves to the relay within 5 s. Tests shorten them.
 */
export interface PathTimers {
  /** probe the current direct path this often while the peer is active */
  heartbeatMs: number;
  /** a direct path is trusted this long after its last pong (about two missed heartbeats) */
  trustMs: number;
  /** a peer is active when it moved a packet this recently (Tailscale's sessionActiveTimeout: 45 s) */
  activeMs: number;
  /** with a trusted direct path, probe every candidate this often for a better one (Tailscale's upgradeInterval: 1 min) */
  upgradeMs: number;
  /** without one, try every candidate and call-me-maybe this often (hole punching) */
  retryDirectMs: number;
  /** a ping with no pong after this is given up (Tailscale's pingTimeoutDuration: 5 s) */
  pingTimeoutMs: number;
  /**
   * A ping to the path in use unanswered this long (or LOST_PING_RTT_FACTOR round trips, if longer) makes the path
   * suspect: while it stays trusted, traffic goes both on it and through the relay until a pong re-confirms it.
   */
  lostPingMs: number;
  /** data sent to a peer on its trusted direct path with nothing received from it this long: the path is probed at once */
  silenceMs: number;
}

export const DEFAULT_PATH_TIMERS: PathTimers = {
  heartbeatMs: 1500,
  trustMs: 3500,
  activeMs: 45_000,
  upgradeMs: 60_000,
  retryDirectMs: 10_000,
  pingTimeoutMs: 5000,
  // a pong comes within a round trip (a few ms to ~300 ms on the internet); 500 ms also leaves room for an event loop
  // held up by a loaded machine. A false suspicion costs only copies of the traffic through the relay until the pong.
  lostPingMs: 500,
  // ping echoes, TCP's ACKs and WireGuard's keepalives answer data within a round trip; a one-way stream costs one
  // extra disco ping a second per peer for it
  silenceMs: 1000,
};

/** A suspect path's limit in round trips of its own: a path measured at 300 ms waits 900 ms before it is suspect. */
export const LOST_PING_RTT_FACTOR = 3;

/** How the engine reaches relays; the daemon supplies it (the engine imports no relay code). */
export interface RelayPaths {
  send(region: string, dst: Buffer, pkt: Buffer): boolean;
  connected(region: string): boolean;
}

/**
 * WireGuard datagrams (disco and STUN not included) and their bytes, by the path that carried them: direct is the UDP
 * socket (mesh peers' trusted paths and guesses, and stock WireGuard devices this node is the gateway of), relay is a
 * relay server. Plain numbers on one object, so counting a packet is two
 * additions: no allocation and no lookup on the data path.
 */
export interface PathTraffic {
  directSentPackets: number;
  directSentBytes: number;
  relaySentPackets: number;
  relaySentBytes: number;
  directReceivedPackets: number;
  directReceivedBytes: number;
  relayReceivedPackets: number;
  relayReceivedBytes: number;
}

export interface PathPeerConfig {
  nodeKey: Buffer;
  discoKey: Buffer;
  candidates: Endpoint[];
  homeRelay: string | null;
}

export type PathInfo =
  | { kind: 'direct'; endpoint: Endpoint; latencyMs: number | null; trusted: boolean }
  | { kind: 'relay'; region: string; latencyMs: number | null }
  | { kind: 'none' };

export type PingResult = { kind: 'direct'; endpoint: Endpoint; latencyMs: number } | { kind: 'relay'; region: string; latencyMs: number };

/** One direct address a peer may be reached at, and what its pings showed. */
export interface Candidate {
  ep: Endpoint;
  latencyMs: number | null;
  lastPongMs: number | null;
  lastPingMs: number;
  /** the last ping to it was a ping back */
  pingedBack: boolean;
  /** the per-peer socket this path leaves from (port prediction's winner); absent: the main socket */
  via?: PeerSocket;
  /** when the oldest ping to it that no pong has answered yet went out (null: every ping so far answered) */
  unansweredSinceMs: number | null;
}

/** Path selection's record of one peer. */
export interface PeerPaths {
  nodeKey: Buffer;
  hex: string;
  /** the peer's WireGuard endpoint, made once: the per-packet paths reuse it */
  virtual: Endpoint;
  discoKey: Buffer;
  sharedKey: Uint8Array;
  homeRelay: string | null;
  candidates: Map<string, Candidate>;
  /** the direct path in use (or last used): trusted while its pongs are recent */
  best: Candidate | null;
  relayLatencyMs: number | null;
  lastActivityBytes: number;
  lastActiveMs: number;
  lastFullProbeMs: number;
  lastWakePingMs: number;
  /** hole punching towards this peer (punch.ts) */
  punch: PunchState;
  /** when the last WireGuard handshake initiation to the peer left (-Infinity: none yet) */
  initiationMs: number;
  /** which way it took: a direct candidate (trusted or a guess), the relay, or none (no way: it went nowhere) */
  initiationWay: Candidate | 'relay' | null;
  /** the peer's WireGuard byte counters at the last silence check (probe.ts `watch`), and when rx last grew */
  silence: { txBytes: number; rxBytes: number; rxChangedMs: number };
}
