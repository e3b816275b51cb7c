// The deterministic pseudo-random bytes the TCP transfer fixtures send (a
// 32-bit LCG, little-endian words): cheap to make at line rate, and both ends
// hash what moved, so any loss, reorder or corruption shows in the SHA-256.
export class PatternSource {
  private seed = 1;

  /** The next `n` bytes of the pattern. */
  next(n: number): Buffer {
    const chunk = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i += 4) {
      this.seed = (this.seed * 1103515245 + 12345) >>> 0;
      if (i + 4 <= n) chunk.writeUInt32LE(this.seed, i);
      else for (let k = 0; i + k < n; k++) chunk[i + k] = (this.seed >>> (8 * k)) & 255;
    }
    return chunk;
  }
}
