// Connections the relay has accepted but not yet admitted: from the TCP accept
// through TLS, the HTTP upgrade and the key handshake, until the client is
// verified (or the connection closes). They are capped in total and per source
// (an IPv4 address or an IPv6 /64), so one host holding many silent
// connections cannot use up the relay's handshake slots or file descriptors
// and lock others out; a connection over a cap is closed as soon as it is
// accepted, before any TLS work. A connection must upgrade within a deadline
// of being accepted (a plain HTTPS request, the latency probe, is closed then
// too); after the upgrade the relay's handshake timeout takes over.
import type { Server } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { PerSourceCounter, sourceKey } from '../util/per-source.js';
import { rateLimitedLog } from '../util/rate-limited-log.js';

/**
 * Accepted, not yet verified connections from one source at once. Well under
 * MAX_HANDSHAKES (512): it takes 16 sources to fill those. Nodes behind one NAT
 * share a source, but a handshake takes a few round trips, so a burst of
 * hundreds of them reconnecting gets through in turns (refused ones retry).
 */
export const MAX_PENDING_PER_SOURCE = 32;
/**
 * Accepted, not yet verified connections at once in all: each holds a socket
 * and TLS state (tens of KiB) for at most PRE_UPGRADE_TIMEOUT_MS plus the
 * handshake timeout, so this bounds file descriptors and memory (~64 MiB) that
 * strangers can take. Twice MAX_HANDSHAKES, room for those and as many more
 * still in TLS.
 */
export const MAX_PENDING_CONNECTIONS = 1024;
/** From the accept to the HTTP upgrade, TLS handshake included: a few round trips, with room for a slow, lossy path. */
export const PRE_UPGRADE_TIMEOUT_MS = 10_000;
/** Refusals are logged at most once a minute per reason, so a flood cannot flood the log. */
const REFUSAL_LOG_INTERVAL_MS = 60_000;

export interface PendingLimits {
  maxPerSource?: number;
  maxTotal?: number;
  preUpgradeTimeoutMs?: number;
}

export interface PendingStats {
  /** connections accepted and not yet verified, now */
  connections: number;
  /** sources that hold at least one of them */
  sources: number;
  refusedOverSource: number;
  refusedOverTotal: number;
  /** closed because they did not upgrade within PRE_UPGRADE_TIMEOUT_MS */
  timedOut: number;
}

interface Entry {
  key: string;
  timer: NodeJS.Timeout | null;
}

export class PendingConnections {
  readonly stats: PendingStats = { connections: 0, sources: 0, refusedOverSource: 0, refusedOverTotal: 0, timedOut: 0 };
  private readonly perSource: PerSourceCounter;
  private readonly maxTotal: number;
  private readonly timeoutMs: number;
  private readonly entries = new Map<Socket, Entry>();
  private readonly logOverSource: (msg: string) => void;
  private readonly logOverTotal: (msg: string) => void;

  constructor(limits: PendingLimits, log: (msg: string) => void) {
    this.perSource = new PerSourceCounter(limits.maxPerSource ?? MAX_PENDING_PER_SOURCE);
    this.maxTotal = limits.maxTotal ?? MAX_PENDING_CONNECTIONS;
    this.timeoutMs = limits.preUpgradeTimeoutMs ?? PRE_UPGRADE_TIMEOUT_MS;
    this.logOverSource = rateLimitedLog(log, REFUSAL_LOG_INTERVAL_MS);
    this.logOverTotal = rateLimitedLog(log, REFUSAL_LOG_INTERVAL_MS);
  }

  /** Counts every connection `server` accepts (call before it listens). */
  attach(server: Server): void {
    server.on('connection', (raw: Socket) => this.accepted(raw));
  }

  private accepted(raw: Socket): void {
    const key = sourceKey(raw.remoteAddress);
    if (this.entries.size >= this.maxTotal) {
      this.stats.refusedOverTotal++;
      this.logOverTotal(
        `refusing connections: ${this.entries.size} are in TLS or their handshake, the most allowed (MAX_PENDING_CONNECTIONS ${this.maxTotal}); ` +
          'many sources are connecting at once',
      );
      raw.destroy();
      return;
    }
    if (!this.perSource.tryAdd(key)) {
      this.stats.refusedOverSource++;
      this.logOverSource(
        `refusing connections from ${key}: it has ${this.perSource.max} in TLS or their handshake, ` +
          `the most one source may (MAX_PENDING_PER_SOURCE ${this.perSource.max}); ` +
          'a host there holds them open, or many nodes behind that address reconnect at once (they retry)',
      );
      raw.destroy();
      return;
    }
    const entry: Entry = { key, timer: null };
    entry.timer = setTimeout(() => {
      entry.timer = null;
      this.stats.timedOut++;
      raw.destroy();
    }, this.timeoutMs);
    entry.timer.unref();
    this.entries.set(raw, entry);
    this.count();
    raw.once('close', () => this.release(raw));
  }

  /** The connection under `sock` upgraded: its deadline ends (the handshake timeout takes over), it still counts. */
  upgraded(sock: Duplex): void {
    const e = this.entries.get(rawOf(sock));
    if (e?.timer) clearTimeout(e.timer);
    if (e) e.timer = null;
  }

  /** The connection under `sock` is verified: it no longer counts against its source or the total. */
  verified(sock: Duplex): void {
    this.release(rawOf(sock));
  }

  /** Closes every pending connection (the relay stops): the HTTP server does not track those still in TLS. */
  closeAll(): void {
    for (const raw of [...this.entries.keys()]) raw.destroy();
  }

  private release(raw: Socket): void {
    const e = this.entries.get(raw);
    if (!e) return;
    if (e.timer) clearTimeout(e.timer);
    this.entries.delete(raw);
    this.perSource.remove(e.key);
    this.count();
  }

  private count(): void {
    this.stats.connections = this.entries.size;
    this.stats.sources = this.perSource.sources;
  }
}

/** The accepted TCP socket under an upgraded one: a TLS socket wraps it (as `_parent`). */
function rawOf(sock: Duplex): Socket {
  const s = sock as Socket & { _parent?: Socket | null };
  return s._parent ?? s;
}
