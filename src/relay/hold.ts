// Backpressure between relay clients: a sender whose packets fill a receiver's
// queue past HOLD_SENDERS_BYTES is not read from until that queue drains, so TCP
// flow control slows the sender instead of the relay dropping a burst of its
// packets (drops of whole bursts cost a relayed TCP stream most of its rate:
// docs/performance.md, "Relay"). A receiver that does not drain within
// maxHoldMs is marked slow: nobody is held for it any more, and its packets are
// dropped at its queue's cap until it drains, so one stalled receiver delays a
// sender's other traffic by at most maxHoldMs.
import type { Duplex } from 'node:stream';
import { pendingBytes } from './cork.js';

/** Queued bytes for a receiver past which its senders are held: half its queue, so the rest of a read's frames still fit. */
export const HOLD_SENDERS_BYTES = 128 * 1024;
/**
 * The longest a sender is held for one receiver: a scheduling stall of a busy
 * receiver is a few ms to tens of ms; one that has not drained in this long is
 * stuck, and holding its senders longer would stall their other traffic.
 */
export const MAX_HOLD_MS = 250;

export interface HoldEnd {
  readonly sock: Duplex;
}

interface State {
  /** senders held until this end's queue drains */
  held: Set<HoldEnd>;
  /** as a sender: the receivers it waits for, and its deadline */
  waitsFor: Set<HoldEnd>;
  timer: NodeJS.Timeout | null;
  /** as a receiver: did not drain within maxHoldMs; cleared when it drains */
  slow: boolean;
  /** as a receiver with senders held: the 'drain' listener that releases them */
  onDrain: (() => void) | null;
}

/** Bytes written to `sock` (this turn's corked frames included) that the kernel has not taken yet. */
export const queuedBytes = (sock: Duplex): number => (sock as Duplex & { writableLength: number }).writableLength + pendingBytes(sock);

export class SenderHolds {
  private readonly state = new WeakMap<HoldEnd, State>();
  readonly stats = { holds: 0, slowReceivers: 0 };

  constructor(
    private readonly holdBytes = HOLD_SENDERS_BYTES,
    private readonly maxHoldMs = MAX_HOLD_MS,
  ) {}

  private get(e: HoldEnd): State {
    let s = this.state.get(e);
    if (!s) {
      s = { held: new Set(), waitsFor: new Set(), timer: null, slow: false, onDrain: null };
      this.state.set(e, s);
    }
    return s;
  }

  /** `to` was just given a frame from `from`: hold `from` when `to`'s queue is past the mark (and `to` is not slow). */
  queued(from: HoldEnd, to: HoldEnd): void {
    if (queuedBytes(to.sock) <= this.holdBytes) return;
    const t = this.get(to);
    if (t.slow || t.held.has(from) || from.sock.destroyed) return;
    const f = this.get(from);
    t.held.add(from);
    f.waitsFor.add(to);
    if (f.waitsFor.size === 1) {
      this.stats.holds++;
      from.sock.pause();
      f.timer = setTimeout(() => this.giveUp(from), this.maxHoldMs);
      f.timer.unref();
    }
    if (!t.onDrain) {
      // 'drain' comes once the socket's queue is empty after a write that found it full; the check
      // after this turn's flush covers a queue the kernel took at once (no 'drain' then)
      t.onDrain = () => this.drained(to);
      to.sock.once('drain', t.onDrain);
      setImmediate(() => {
        if (t.onDrain && queuedBytes(to.sock) <= this.holdBytes) this.drained(to);
      });
    }
  }

  /** Whether `to` is marked slow (its senders are not held; its packets drop at its cap). */
  isSlow(to: HoldEnd): boolean {
    return this.state.get(to)?.slow ?? false;
  }

  /** `to`'s queue drained (or it is gone): its senders go on. */
  drained(to: HoldEnd): void {
    const t = this.state.get(to);
    if (!t) return;
    if (t.onDrain) to.sock.off('drain', t.onDrain);
    t.onDrain = null;
    t.slow = false;
    this.releaseAll(t, to);
  }

  /** An end closed: release those held for it, and stop holding it for others. */
  forget(e: HoldEnd): void {
    const s = this.state.get(e);
    if (!s) return;
    this.releaseAll(s, e);
    if (s.onDrain) e.sock.off('drain', s.onDrain);
    for (const to of s.waitsFor) this.state.get(to)?.held.delete(e);
    if (s.timer) clearTimeout(s.timer);
    this.state.delete(e);
  }

  private releaseAll(t: State, to: HoldEnd): void {
    for (const from of t.held) this.release(from, to);
    t.held.clear();
  }

  private release(from: HoldEnd, to: HoldEnd): void {
    const f = this.state.get(from);
    if (!f?.waitsFor.delete(to) || f.waitsFor.size > 0) return;
    if (f.timer) clearTimeout(f.timer);
    f.timer = null;
    if (!from.sock.destroyed) from.sock.resume();
  }

  /** `from` waited maxHoldMs: every receiver it waits for is slow, and everyone held for them goes on. */
  private giveUp(from: HoldEnd): void {
    const f = this.state.get(from);
    if (!f) return;
    f.timer = null;
    for (const to of [...f.waitsFor]) {
      const t = this.state.get(to);
      if (!t) continue;
      if (!t.slow) this.stats.slowReceivers++;
      t.slow = true;
      this.releaseAll(t, to);
    }
  }
}
