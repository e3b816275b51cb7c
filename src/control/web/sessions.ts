// Browser sessions of the admin page. Logging in with an admin token gives a
// random session id (the cookie) and a random CSRF token (sent back in a header
// on every write). The table is in memory, bounded in size, and each session
// ends after a fixed lifetime or when its admin token is revoked; a restart of
// the control server logs every browser out.
import { randomBytes, timingSafeEqual } from 'node:crypto';

/** A working day: an operator logs in again each morning; a stolen cookie is useful for at most this long. */
export const SESSION_LIFETIME_MS = 8 * 60 * 60 * 1000;
/**
 * Sessions kept at once. A few operators with a few browsers each need a
 * handful; the bound keeps logins (rate limited too) from growing the table.
 * When it is full the session closest to its end is dropped.
 */
export const MAX_SESSIONS = 256;

export interface Session {
  id: string;
  csrf: string;
  /** the admin token that logged it in */
  tokenId: string;
  expiresAtMs: number;
}

export interface SessionLimits {
  lifetimeMs: number;
  maxSessions: number;
}

export class SessionTable {
  /** insertion order is expiry order (every session has the same lifetime) */
  private readonly sessions = new Map<string, Session>();
  private readonly limits: SessionLimits;

  constructor(
    limits: Partial<SessionLimits> = {},
    private readonly now: () => number = Date.now,
  ) {
    this.limits = { lifetimeMs: SESSION_LIFETIME_MS, maxSessions: MAX_SESSIONS, ...limits };
  }

  create(tokenId: string): Session {
    this.prune();
    while (this.sessions.size >= this.limits.maxSessions) this.sessions.delete(this.sessions.keys().next().value!);
    const s: Session = {
      id: randomBytes(32).toString('base64url'),
      csrf: randomBytes(32).toString('base64url'),
      tokenId,
      expiresAtMs: this.now() + this.limits.lifetimeMs,
    };
    this.sessions.set(s.id, s);
    return s;
  }

  /** The live session with this id, or null. */
  get(id: string): Session | null {
    const s = this.sessions.get(id);
    if (!s) return null;
    if (s.expiresAtMs <= this.now()) {
      this.sessions.delete(id);
      return null;
    }
    return s;
  }

  delete(id: string): void {
    this.sessions.delete(id);
  }

  /** Ends every session of a token (it was revoked). */
  dropToken(tokenId: string): void {
    for (const [id, s] of this.sessions) if (s.tokenId === tokenId) this.sessions.delete(id);
  }

  get size(): number {
    return this.sessions.size;
  }

  private prune(): void {
    const t = this.now();
    for (const [id, s] of this.sessions) {
      if (s.expiresAtMs > t) break;
      this.sessions.delete(id);
    }
  }
}

/** Constant-time comparison of a presented CSRF token with the session's. */
export function csrfMatches(s: Session, presented: string | undefined): boolean {
  if (typeof presented !== 'string') return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(s.csrf);
  return a.length === b.length && timingSafeEqual(a, b);
}
