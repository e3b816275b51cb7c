// A bound on the whole maps control holds built and not yet sent. A change to
// the policy can alter the maps of a thousand streams at once (each tens to
// hundreds of KB): built in one broadcast, every one of those lines would sit
// in memory together, as a string and then as the socket's unsent data, until
// each node read it. Whole maps are built only while the bytes of those
// already built and not yet handed to the kernel stay under a budget; a stream
// beyond it keeps its place (its map is due) and gets its map with a later
// broadcast, which starts once enough of the earlier maps went out. Deltas are
// not counted and never wait: a stream's delta is built from what its node
// holds, so one whose whole map waits gets nothing until that map is sent.

/**
 * Whole-map bytes built and not yet handed to the kernel, over all streams.
 * A policy change at 5,000 nodes rebuilds ~1,262 maps of ~97 KB: 120 MB of map
 * text at once, plus the TLS buffers they pass through, was control's peak
 * memory. 8 MiB is a few per cent of what the server holds for its streams;
 * readers on a LAN take it in milliseconds, so maps still go out at hundreds
 * of MB/s, a budget's worth per broadcast.
 */
export const WHOLE_MAP_BYTES_IN_FLIGHT = 8 * 1024 * 1024;

export class WholeMapBudget {
  private inFlight = 0;
  /** the most whole-map bytes ever in flight at once */
  peak = 0;
  /** whole maps held back for a later broadcast */
  deferred = 0;
  /** a map was held back: `onRoom` is called once the bytes in flight fall under the budget */
  private waiting = false;

  /**
   * @param onRoom called when maps were held back and the bytes in flight fell
   *   under the budget again (the caller starts another broadcast)
   */
  constructor(
    private readonly budgetBytes: number,
    private readonly onRoom: () => void,
  ) {
    if (!Number.isSafeInteger(budgetBytes) || budgetBytes < 1) throw new RangeError(`whole-map budget must be a positive integer of bytes, got ${budgetBytes}`);
  }

  /** Whole-map bytes built and not yet sent. */
  get bytes(): number {
    return this.inFlight;
  }

  /**
   * Whether a whole map may be built now. While the bytes in flight are under
   * the budget one more map may start (so one map larger than the budget
   * still goes out, alone); false: it waits for a later broadcast.
   */
  admit(): boolean {
    if (this.inFlight < this.budgetBytes) return true;
    this.waiting = true;
    this.deferred++;
    return false;
  }

  /** A whole map of `bytes` is being written: returns what releases it once sent (or its stream closed); calling it again does nothing. */
  take(bytes: number): () => void {
    this.inFlight += bytes;
    if (this.inFlight > this.peak) this.peak = this.inFlight;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inFlight -= bytes;
      if (this.waiting && this.inFlight < this.budgetBytes) {
        this.waiting = false;
        this.onRoom();
      }
    };
  }
}
