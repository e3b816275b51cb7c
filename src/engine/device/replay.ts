// The anti-replay sliding window over the 64-bit transport counter (RFC 6479
// style, as wireguard-go): a ring of 32-bit words covering the last 8,192
// counters, so reordering of up to 8,192 packets is tolerated.
// Counters are numbers: REJECT_AFTER_TIME ends a key long before 2^53 messages.

const BLOCK_BITS = 32;
const RING_BLOCKS = 256; // 8,192 bits (wireguard-go: replay.go)
const WINDOW_SIZE = (RING_BLOCKS - 1) * BLOCK_BITS; // one block is always being recycled
const BLOCK_MASK = RING_BLOCKS - 1;

export class ReplayFilter {
  private last = 0;
  private readonly ring = new Uint32Array(RING_BLOCKS);

  /** True if `counter` is new and inside the window (and marks it seen). */
  validateCounter(counter: number, limit: number): boolean {
    if (counter >= limit) return false;
    const block = Math.floor(counter / BLOCK_BITS);
    if (counter > this.last) {
      const lastBlock = Math.floor(this.last / BLOCK_BITS);
      const diff = Math.min(block - lastBlock, RING_BLOCKS);
      for (let i = 1; i <= diff; i++) this.ring[(lastBlock + i) & BLOCK_MASK] = 0;
      this.last = counter;
    } else if (this.last - counter > WINDOW_SIZE) {
      return false;
    }
    const idx = block & BLOCK_MASK;
    const bit = 1 << (counter % BLOCK_BITS);
    if ((this.ring[idx]! & bit) !== 0) return false;
    this.ring[idx] = this.ring[idx]! | bit;
    return true;
  }

  static readonly windowSize = WINDOW_SIZE;
}
