// WireGuard protocol constants (whitepaper §6.1, wireguard.com/protocol) and
// the engine's own limits. Timer values that tests shorten live in
// `EngineTimers` so they can be injected instead of edited.

export const CONSTRUCTION = 'Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s';
export const IDENTIFIER = 'WireGuard v1 zx2c4 Jason@zx2c4.com';
export const LABEL_MAC1 = 'mac1----';
export const LABEL_COOKIE = 'cookie--';

export const SECOND_MS = 1000;

export interface EngineTimers {
  /** initiator starts a new handshake once its key is this old (whitepaper: 120 s) */
  rekeyAfterTimeMs: number;
  /** no key is used, either way, after this age (180 s) */
  rejectAfterTimeMs: number;
  /** give up retrying a handshake after this long (90 s) */
  rekeyAttemptTimeMs: number;
  /** retry an unanswered initiation after this (5 s) plus jitter */
  rekeyTimeoutMs: number;
  /** up to this much random jitter on each retry (333 ms) so peers do not lock-step */
  rekeyTimeoutJitterMaxMs: number;
  /** send a keepalive if we received data and sent nothing for this long (10 s) */
  keepaliveTimeoutMs: number;
  /** a cookie from a cookie reply is usable for this long (120 s) */
  cookieRefreshTimeMs: number;
}

export const DEFAULT_TIMERS: Readonly<EngineTimers> = Object.freeze({
  rekeyAfterTimeMs: 120 * SECOND_MS,
  rejectAfterTimeMs: 180 * SECOND_MS,
  rekeyAttemptTimeMs: 90 * SECOND_MS,
  rekeyTimeoutMs: 5 * SECOND_MS,
  rekeyTimeoutJitterMaxMs: 333,
  keepaliveTimeoutMs: 10 * SECOND_MS,
  cookieRefreshTimeMs: 120 * SECOND_MS,
});

/** 2^60 messages: initiator rekeys (unreachable with number counters within REJECT_AFTER_TIME, kept for clarity). */
export const REKEY_AFTER_MESSAGES = 2 ** 60;
/** 2^64 − 2^13 − 1 messages, rounded down to what a number can hold exactly. */
export const REJECT_AFTER_MESSAGES = Number.MAX_SAFE_INTEGER;

export const MESSAGE_INITIATION = 1;
export const MESSAGE_RESPONSE = 2;
export const MESSAGE_COOKIE_REPLY = 3;
export const MESSAGE_TRANSPORT = 4;

export const INITIATION_SIZE = 148;
export const RESPONSE_SIZE = 92;
export const COOKIE_REPLY_SIZE = 64;
export const TRANSPORT_HEADER_SIZE = 16;
export const TRANSPORT_MIN_SIZE = TRANSPORT_HEADER_SIZE + 16; // header + empty AEAD tag (keepalive)

/** Largest UDP payload we accept; an IP packet cannot exceed 65,535 bytes. */
export const MAX_MESSAGE_SIZE = 65535;
/** Plaintext is padded to a multiple of this (whitepaper §5.4.6). */
export const PADDING_MULTIPLE = 16;

/** Packets held for a peer while its handshake completes (wireguard-go: 128). */
export const MAX_STAGED_PACKETS = 128;
/**
 * A pending initiation is resent on a way to the peer that just opened (a direct path proven, the relay connected, the
 * peer learned) once it is this old, and a younger one waits on a timer until it is: the peer's flood guard
 * (HANDSHAKE_INITIATION_RATE_MS, 20 ms) would drop a copy that close to the first, with room for jitter. It also bounds
 * these resends to one per 50 ms per peer however often paths open.
 */
export const PATH_OPENED_ELSEWHERE_MIN_MS = 50;
/** Ignore initiations from one peer arriving faster than this (wireguard-go: 20 ms) — flood guard. */
export const HANDSHAKE_INITIATION_RATE_MS = 20;
/** The cookie secret rotates this often (whitepaper §5.4.7: 2 minutes). */
export const COOKIE_SECRET_MAX_AGE_MS = 120 * SECOND_MS;
/**
 * Handshake messages per second beyond which we are "under load" and demand
 * MAC2 cookies. wireguard-go measures the backlog of its handshake queue; we
 * handle handshakes inline, so we measure their rate instead. One initiation
 * costs ~0.3 ms here, so 1,000/s is a third of a core.
 */
export const UNDER_LOAD_HANDSHAKES_PER_SECOND = 1000;
/** Stay under load this long after the rate falls (wireguard-go: 1 s). */
export const UNDER_LOAD_AFTER_MS = SECOND_MS;
/** XChaCha20-Poly1305 nonce of a cookie reply. */
export const NONCE_LEN_XAEAD_BYTES = 24;
