// The TAI64N timestamps a device puts in its handshake initiations, kept
// strictly increasing. A responder refuses an initiation whose timestamp is not
// above the last one it took from that key (replay protection, whitepaper
// §5.1), so a wall clock stepped back (NTP, a VM resumed, a hand set clock)
// would lock this node out of every peer that saw a later one until the clock
// caught up. Timestamps here never go down: one below the last one sent becomes
// that one plus a step. Across restarts, a floor is persisted before any
// timestamp above it is sent; it is raised by a reserve at a time, so it is
// written at most once per reserve of timestamp progress, not per handshake.
import { tai64n, TAI64N_WHITENER_NS } from './crypto.js';

/** Where the floor lives between runs (the daemon: a file in its state dir); null from `load` when there is none. */
export interface TimestampFloorStore {
  load(): Buffer | null;
  /** makes `floor` durable before returning; throws when it cannot */
  save(floor: Buffer): void;
}

/**
 * How far ahead of the last timestamp sent the persisted floor is set. A bigger reserve means fewer writes
 * (one per this much wall time while handshakes go on) but timestamps up to this much ahead of the wall clock
 * after a crash; peers compare a key's timestamps only with each other, so a lead costs nothing. One minute:
 * at most one small fsync'd write a minute.
 */
export const TIMESTAMP_RESERVE_MS = 60_000;
/** A persisted floor further than this ahead of the wall clock is not one this code wrote (corrupt or hostile): ignored. */
export const MAX_FLOOR_LEAD_MS = 10 * 365 * 24 * 3600 * 1000;

const LABEL = 0x400000000000000an;
const NS_PER_S = 1_000_000_000;
export const TAI64N_BYTES = 12;

/** A TAI64N timestamp `ns` nanoseconds later (whole whitener steps keep it in the whitened form). */
export function tai64nAdd(ts: Buffer, ns: number): Buffer {
  const out = Buffer.alloc(TAI64N_BYTES);
  let secs = ts.readBigUInt64BE(0);
  let nanos = ts.readUInt32BE(8) + ns;
  secs += BigInt(Math.floor(nanos / NS_PER_S));
  nanos %= NS_PER_S;
  out.writeBigUInt64BE(secs, 0);
  out.writeUInt32BE(nanos, 8);
  return out;
}

/** Whether 12 bytes are a TAI64N timestamp this code could have made: the 2^62 label, seconds since 1970, nanoseconds < 10^9. */
export function isTai64n(b: Buffer): boolean {
  if (b.length !== TAI64N_BYTES) return false;
  const secs = b.readBigUInt64BE(0);
  return secs >= LABEL && secs - LABEL < 2n ** 40n && b.readUInt32BE(8) < NS_PER_S;
}

export interface MonotonicTai64nOptions {
  store?: TimestampFloorStore | null;
  reserveMs?: number;
  /** one line when the floor cannot be read or written */
  log?: (msg: string) => void;
}

export class MonotonicTai64n {
  /** the last timestamp sent, or the floor loaded at start: every next one is above it */
  private last: Buffer = Buffer.alloc(TAI64N_BYTES);
  /** what the store holds: timestamps up to it may be sent without a write */
  private ceiling: Buffer = Buffer.alloc(TAI64N_BYTES);
  private readonly store: TimestampFloorStore | null;
  private readonly reserveNs: number;
  private readonly log: (msg: string) => void;
  private saveFailedLogged = false;
  /** floors written (the write rate is what `reserveMs` bounds) */
  writes = 0;

  constructor(
    private readonly wallNow: () => number,
    o: MonotonicTai64nOptions = {},
  ) {
    this.store = o.store ?? null;
    this.reserveNs = (o.reserveMs ?? TIMESTAMP_RESERVE_MS) * 1e6;
    this.log = o.log ?? (() => {});
    if (!this.store) return;
    let floor: Buffer | null = null;
    try {
      floor = this.store.load();
    } catch (err) {
      this.log(`handshake timestamp floor unreadable (${(err as Error).message}): starting from the wall clock`);
    }
    if (floor === null) return;
    if (!isTai64n(floor) || Buffer.compare(floor, tai64n(this.wallNow() + MAX_FLOOR_LEAD_MS)) > 0) {
      this.log('handshake timestamp floor is not a timestamp this node wrote (or lies years ahead): ignored, starting from the wall clock');
      return;
    }
    this.last = Buffer.from(floor);
    this.ceiling = Buffer.from(floor);
  }

  /** The next timestamp to send: the wall clock's, or one step above the last one when the clock is not past it. */
  next(): Buffer {
    let ts = tai64n(this.wallNow());
    if (Buffer.compare(ts, this.last) <= 0) ts = tai64nAdd(this.last, TAI64N_WHITENER_NS);
    if (this.store && Buffer.compare(ts, this.ceiling) > 0) {
      const ceiling = tai64nAdd(ts, this.reserveNs);
      try {
        this.store.save(ceiling);
        this.ceiling = ceiling;
        this.writes++;
      } catch (err) {
        // still monotonic while this process runs; only a restart with the clock stepped back could repeat one
        if (!this.saveFailedLogged) this.log(`handshake timestamp floor not saved (${(err as Error).message}): a restart may need the clock to catch up`);
        this.saveFailedLogged = true;
      }
    }
    this.last = ts;
    return ts;
  }
}
