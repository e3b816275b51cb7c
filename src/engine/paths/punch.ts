// Hole punching through NATs with no WAN input firewall ("bare" Linux NATs:
// a Docker or LXC host, a DIY router), as a per-peer state machine with no I/O.
//
// Such a router delivers a peer's probe that arrives before our own packet to
// itself, and conntrack records it (unreplied, 30 s, refreshed by each further
// probe); masquerade then gives our own flow to that peer another port (a
// tuple clash), so the hole never opens. Three things avoid or undo that:
//
// - Openers: an attempt starts with one TTL-limited copy of a ping to each of
//   the peer's candidates. It opens our NAT towards the peer and expires on the
//   way, before the peer's router (OPENER_TTL hops). Then call-me-maybe over the
//   relay says "I have opened" (the flag); the peer answers with full pings,
//   which now find our NAT open. Full pings wait for the peer's call-me-maybe,
//   so neither side's full-TTL probe reaches a router that has not sent first.
// - Roles after a failure: where the openers cannot expire in time (a peer's
//   router one hop from ours), the bare side must simply send first. Nobody
//   knows which side is bare, so after a failed attempt the sides take turns:
//   one sends openers and call-me-maybe, the other only answers it.
// - Backoff: after a failed attempt, no probe goes to the peer's candidates for
//   PUNCH_BACKOFF_MS, longer than conntrack's unreplied-UDP timeout, so the
//   poisoned entries (ours and the peer router's) expire before the next try.
//
// Peers that do not set the flag (older versions) probe at full TTL on their
// own schedule and would keep a poisoned entry alive: with them, no backoff.
// Any other peer is taken to back off too, even before its first call-me-maybe
// arrived (it may have come before the peer was in our map, and been dropped):
// a side that kept probing would keep its own clashed entry alive.

/** Linux's nf_conntrack_udp_timeout: an unreplied UDP entry lives this long after its last packet. */
export const CONNTRACK_UDP_UNREPLIED_MS = 30_000;
/** Quiet time after a failed attempt: the unreplied timeout plus 2 s for the peer's last probes still on their way. */
export const PUNCH_BACKOFF_MS = CONNTRACK_UDP_UNREPLIED_MS + 2000;
/** An attempt that has no trusted direct path after this has failed (the lab's go direct within ~1 s of the openers). */
export const PUNCH_ATTEMPT_MS = 5000;
/**
 * The openers' TTL: the first hop is our own NAT (or the host, inside a container), the second the next router out.
 * Two keep them within our own network and ISP on any real path; they expire before a peer more than two hops away.
 */
export const OPENER_TTL = 2;

export interface PunchTimers {
  attemptMs: number;
  backoffMs: number;
  /** the least time between the starts of two attempts (PathTimers.retryDirectMs) */
  retryMs: number;
}

/** One peer's hole-punching state. */
export interface PunchState {
  /** the attempt in progress: when it began, or null */
  attemptStartMs: number | null;
  /** we began the attempt in progress with openers (false: we only answer the peer's call-me-maybe) */
  initiator: boolean;
  /** full-TTL probes went to the peer's candidates in this attempt */
  fullSent: boolean;
  lastAttemptStartMs: number;
  /** nothing goes to the peer's candidates before this (a failed attempt's conntrack entries expiring) */
  quietUntilMs: number;
  /** the peer's call-me-maybe came while we were quiet: the next attempt answers it */
  peerAsked: boolean;
  /** failed attempts in a row (who initiates the next one alternates with it) */
  failures: number;
  /** the peer's call-me-maybe came without the opened flag: an older version that never backs off */
  peerIsOld: boolean;
  /** the attempt in progress is coordinated (openers, the flag); an uncoordinated one is full pings as before, no quiet */
  coordinated: boolean;
}

export function newPunchState(): PunchState {
  return {
    attemptStartMs: null,
    initiator: false,
    fullSent: false,
    lastAttemptStartMs: -Infinity,
    quietUntilMs: -Infinity,
    peerAsked: false,
    failures: 0,
    peerIsOld: false,
    coordinated: false,
  };
}

/**
 * Whether we send the openers of the next attempt. The first attempt both sides do. After a failure the sides take
 * turns, by failure count and key order (`weAreLower`: our node key sorts before the peer's): the bare side sending
 * first is what works when openers cannot expire before the peer's router, and one of any two turns is its.
 */
export function initiatesNext(s: PunchState, weAreLower: boolean): boolean {
  return s.failures === 0 || (s.failures + (weAreLower ? 0 : 1)) % 2 === 1;
}

export type BeatAction = 'none' | 'start';

/**
 * Each heartbeat while the peer has no trusted direct path. Ends an attempt that ran out (quiet follows when we sent
 * anything to the peer in a coordinated attempt and the peer is no older version), and says when the next one starts: at once when the peer
 * asked while we were quiet, else every `retryMs` while the peer is wanted.
 */
export function punchBeat(s: PunchState, now: number, wanted: boolean, t: PunchTimers): BeatAction {
  if (s.attemptStartMs !== null) {
    if (now - s.attemptStartMs < t.attemptMs) return 'none';
    const sent = s.initiator || s.fullSent;
    s.attemptStartMs = null;
    s.failures++;
    if (sent && s.coordinated && !s.peerIsOld) s.quietUntilMs = now + t.backoffMs;
    return 'none';
  }
  if (now < s.quietUntilMs) return 'none';
  if (s.peerAsked || (wanted && now - s.lastAttemptStartMs >= t.retryMs)) return 'start';
  return 'none';
}

/** An attempt begins (`initiator`: with our openers; else waiting for the peer's call-me-maybe), `coordinated` or not. */
export function attemptStarted(s: PunchState, now: number, initiator: boolean, coordinated = true): void {
  s.attemptStartMs = now;
  s.coordinated = coordinated;
  s.lastAttemptStartMs = now;
  s.initiator = initiator;
  s.fullSent = false;
  s.peerAsked = false;
}

/** A direct path was proven: the attempt (if any) succeeded, and the next lapse starts afresh. */
export function punchSucceeded(s: PunchState): void {
  s.attemptStartMs = null;
  s.failures = 0;
  s.quietUntilMs = -Infinity;
  s.peerAsked = false;
}

/** Whether full-TTL probes may go to the peer's candidates now (not while a failed attempt's entries expire). */
export function quiet(s: PunchState, now: number): boolean {
  return now < s.quietUntilMs;
}

export type CallMeMaybeAction = 'defer' | 'answer';

/**
 * The peer's call-me-maybe came (`opened`: it set the flag, so it sent openers and waits for our full pings). While
 * we are quiet it is remembered for the end of the quiet; otherwise we answer with full pings.
 */
export function onCallMeMaybe(s: PunchState, now: number, opened: boolean): CallMeMaybeAction {
  s.peerIsOld = !opened;
  if (opened && quiet(s, now)) {
    s.peerAsked = true;
    return 'defer';
  }
  if (!opened) s.quietUntilMs = -Infinity;
  return 'answer';
}
