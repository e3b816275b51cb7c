// Giving memory back when the daemon goes quiet. V8's memory reducer seldom
// runs under Node (measured: a heap grown to 22 MB stayed there through 18 s of
// idleness), so without this a daemon keeps whatever its heap grew to at start-up
// or during a transfer, and its idle RSS depends on luck (57 or 62 MiB in
// back-to-back bench runs; docs/performance.md, "Idle memory"). Once the tunnel has carried
// no more than a trickle (TRICKLE_PACKETS: a ping a second, an idle SSH
// session's keepalives) for QUIET_MS and the heap is larger than after the last release (or a
// reader thread has ended since), full collections and malloc_trim hand it
// back, and the node binary's pages that ran once leave our page tables
// (binary-pages.ts): 7–10 ms, once per quiet spell.
//
// The daemon and `debug engine` start with V8's own memory reducer disarmed
// (bin/meshctl): it is not idle-driven here but fires ~8 s after start-up,
// three full collections of 4–24 ms in the middle of a new tunnel's first
// traffic, after which V8 compiled 13–21 data-path functions again (3–7
// without them; docs/performance.md, "Compiled early"). Collections belong in
// the quiet, which is when this class runs them.
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { trimMallocSoon } from './malloc-trim.js';
import { dropBinaryPages } from './binary-pages.js';

export const QUIET_MS = 10_000;
/** at most this many packets in QUIET_MS still count as quiet (a trickle allocates next to nothing) */
export const TRICKLE_PACKETS = 50;
/** growth since the last release that is worth a collection */
const GROWTH_BYTES = 1 << 20;
/** releases tried again after one that left the heap above its usual level (see settle) */
const RETRIES = 2;

type GcFn = (opts?: { type?: string; execution?: string; flavor?: string }) => void;
let gcFn: GcFn | null | undefined;

/** A full, memory-reducing collection now, then malloc_trim and the binary's cold pages; false where the collector cannot be reached. */
export function releaseMemory(): boolean {
  if (gcFn === undefined) {
    try {
      // the same switch as node --expose-gc, turned on only for a context of our own
      setFlagsFromString('--expose-gc');
      gcFn = runInNewContext('gc') as GcFn;
    } catch {
      gcFn = null;
    }
  }
  if (!gcFn) return false;
  // a plain full collection frees what is dead (the 'last-resort' flavour alone left 40 MB of dead
  // arrays in place once koffi was loaded); the second gives the empty pages back
  gcFn();
  gcFn({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  trimMallocSoon(0);
  dropBinaryPages();
  return true;
}

export class IdleMemory {
  /** the activity count when the current quiet spell began; -1 before the first check */
  private activityAtQuiet = -1;
  private quietSince = 0;
  private releasedAt = 0;
  private timer: NodeJS.Timeout | null = null;
  /** collections done, and when the last one ran (performance.now()), for the counters */
  releases = 0;
  lastReleaseAt: number | null = null;

  private readonly quietMs: number;
  private readonly release: () => boolean;
  private readonly heapBytes: () => number;
  private readonly threads: () => number;
  private lastThreads = 0;
  private threadEnded = false;
  /** the heap a release has left behind when nothing big was live: the level a later release is compared with */
  private baseline = -1;
  /** a release left the heap above the baseline: try again at a later check, up to RETRIES times */
  private retryAt = -1;
  private retriesDone = 0;

  constructor(
    /** a count of the packets the tunnel has carried */
    private readonly activity: () => number,
    opts: { quietMs?: number; release?: () => boolean; heapBytes?: () => number; threads?: () => number } = {},
  ) {
    this.quietMs = opts.quietMs ?? QUIET_MS;
    this.release = opts.release ?? releaseMemory;
    this.heapBytes = opts.heapBytes ?? (() => getHeapStatistics().total_heap_size);
    // reader threads retire RETIRE_AFTER_MS (15 s) after a burst, usually after the release that
    // followed it (10–15 s); what they leave behind (~30 MiB with 100 peers, docs/performance.md)
    // goes back only with another release, though our own heap has not grown
    this.threads = opts.threads ?? (() => 0);
  }

  /** Looks twice per quiet period, so a release comes 1–1.5 quiet periods after the last packet. */
  start(): void {
    this.timer ??= setInterval(() => this.check(performance.now()), this.quietMs / 2).unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  check(now: number): void {
    const threads = this.threads();
    if (threads < this.lastThreads) this.threadEnded = true;
    this.lastThreads = threads;
    const a = this.activity();
    // a count that went down belongs to a new engine: start over
    if (this.activityAtQuiet < 0 || a < this.activityAtQuiet || a - this.activityAtQuiet > TRICKLE_PACKETS) {
      this.activityAtQuiet = a;
      this.quietSince = now;
      return;
    }
    if (now - this.quietSince < this.quietMs) return;
    const heap = this.heapBytes();
    const retry = this.retryAt >= 0 && now >= this.retryAt;
    if (this.releasedAt > 0 && heap < this.releasedAt + GROWTH_BYTES && !this.threadEnded && !retry) return;
    if (this.release()) {
      this.releases++;
      this.lastReleaseAt = now;
    }
    this.releasedAt = this.heapBytes();
    this.threadEnded = false;
    this.settle(now, retry);
  }

  /**
   * A release can run while the daemon is busy without packets: taking in
   * network map after map as 98 nodes register. The heap it leaves then stays
   * reserved (once 43.5 MiB, 11.2 of it in use), and as it never grows past
   * that, no later release came: 63-75 MiB idle with 100 peers against 45-50,
   * in three of 21 bench runs (docs/performance.md, "Idle memory"). So a
   * release that leaves more than the baseline is tried again at the next
   * checks, up to RETRIES times; if they all leave as much, the live data
   * really grew and that is the new baseline.
   */
  private settle(now: number, wasRetry: boolean): void {
    this.retryAt = -1;
    if (this.baseline < 0 || this.releasedAt <= this.baseline + GROWTH_BYTES) {
      this.baseline = this.baseline < 0 ? this.releasedAt : Math.min(this.baseline, this.releasedAt);
      this.retriesDone = 0;
      return;
    }
    this.retriesDone = wasRetry ? this.retriesDone + 1 : 0;
    if (this.retriesDone < RETRIES)
      this.retryAt = now + this.quietMs / 4; // the next check (every quietMs / 2), whatever its jitter
    else {
      this.baseline = this.releasedAt;
      this.retriesDone = 0;
    }
  }
}
