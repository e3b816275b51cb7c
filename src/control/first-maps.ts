// Admission of whole first maps. After a control restart every node
// reconnects within a second or two and each needs its whole map: built all
// in one broadcast, thousands of maps (tens to hundreds of KB each) would sit
// in memory at once, as strings and as unsent socket data. Each broadcast
// builds first maps only up to a byte budget; the streams left over keep
// their place and get theirs with the next broadcast, which follows at once.

/**
 * Whole-map bytes one broadcast may write to streams that have no map yet. A
 * broadcast at 5,000 nodes takes tens of ms, so 8 MiB each is still a few
 * hundred MB/s of first maps (the storm is over in seconds) while the maps in
 * flight stay a small part of the server's memory.
 */
export const FIRST_MAP_BYTES_PER_BROADCAST = 8 * 1024 * 1024;

export class FirstMapAdmission {
  private left = 0;
  /** a first map was held back in this broadcast: another broadcast is due */
  deferred = false;

  constructor(private readonly budgetBytes: number) {}

  /** A broadcast starts: the budget is whole again. */
  begin(): void {
    this.left = this.budgetBytes;
    this.deferred = false;
  }

  /** Whether a first map may be built now; false: it waits for the next broadcast. */
  admit(): boolean {
    if (this.left > 0) return true;
    this.deferred = true;
    return false;
  }

  /** A whole map of `bytes` was written. */
  spend(bytes: number): void {
    this.left -= bytes;
  }
}
