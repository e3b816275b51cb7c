// How many local API connections each local user may hold open. The socket is
// mode 0666, so any user can connect; without caps one user's idle connections
// would take the daemon to its fd limit and lock root out. Every connection is
// attributed to the uid the kernel recorded at connect time (SO_PEERCRED).
import type { Socket } from 'node:net';
import { peerCred } from './peercred.js';

/** A CLI command holds one connection at a time; 32 covers a user's parallel scripts and `status --watch` windows. */
export const MAX_CONNS_PER_UID = 32;
/** All users together (8 users at their own cap); each connection is one fd of the daemon's, whose soft limit Node raises to the hard one. */
export const MAX_CONNS_TOTAL = 256;
/** Connections only root and the daemon's own uid may use once the others have taken MAX_CONNS_TOTAL: root can always run `meshctl`. */
export const PRIVILEGED_RESERVE_CONNS = 32;

export interface ConnLimits {
  /** per uid other than root and the daemon's own */
  perUid: number;
  /** all connections of unprivileged uids count against this */
  total: number;
  /** room above `total` that only root and the daemon's uid may use */
  privilegedReserve: number;
}

export const DEFAULT_CONN_LIMITS: ConnLimits = { perUid: MAX_CONNS_PER_UID, total: MAX_CONNS_TOTAL, privilegedReserve: PRIVILEGED_RESERVE_CONNS };

/** uid under which connections whose credentials cannot be read are counted (they may only read) */
const UNKNOWN_UID = -1;

export class ConnectionGate {
  private readonly byUid = new Map<number, number>();
  private open = 0;
  private readonly limits: ConnLimits;

  constructor(
    limits: Partial<ConnLimits> = {},
    private readonly privileged: (uid: number) => boolean = (uid) => uid === 0 || uid === process.getuid?.(),
    private readonly onRefused: (uid: number, why: string) => void = () => {},
  ) {
    this.limits = { ...DEFAULT_CONN_LIMITS, ...limits };
  }

  /** null when the socket is admitted (and counted until it closes), else a one-line reason it was refused. */
  admit(sock: Socket): string | null {
    const uid = peerCred(sock)?.uid ?? UNKNOWN_UID;
    const mine = this.byUid.get(uid) ?? 0;
    const { perUid, total, privilegedReserve } = this.limits;
    let why: string | null = null;
    if (this.privileged(uid)) {
      if (this.open >= total + privilegedReserve) why = `the daemon has ${this.open} local API connections open, its limit`;
    } else if (mine >= perUid) {
      why = `uid ${uid} has ${mine} local API connections open, the most one user may hold: close some`;
    } else if (this.open >= total) {
      why = `the daemon has ${this.open} local API connections open, the most all users together may hold; root can still connect`;
    }
    if (why) {
      this.onRefused(uid, why);
      return why;
    }
    this.byUid.set(uid, mine + 1);
    this.open++;
    sock.once('close', () => {
      this.open--;
      const n = (this.byUid.get(uid) ?? 1) - 1;
      if (n > 0) this.byUid.set(uid, n);
      else this.byUid.delete(uid);
    });
    return null;
  }
}
