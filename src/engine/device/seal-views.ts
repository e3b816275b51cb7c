// Views of a seal's output buffer by offset, made once: a koffi call takes a
// Uint8Array, and making one per packet is per-packet garbage
// (docs/performance.md, "Per-packet garbage").
/**
 * Views of a seal's output memory kept per offset: a send batch's slots are at fixed offsets of one buffer, so each
 * view is made once. 256 is twice the largest batch (mmsg.ts); a buffer with more offsets than that starts afresh.
 */
const MAX_CACHED_SEAL_VIEWS = 256;

/** `out` from an offset to its end, kept per offset (the native length argument bounds what is used): no view per packet. */
export class SealViews {
  private out: Buffer | null = null;
  private readonly views = new Map<number, Uint8Array>();
  of(out: Buffer, off: number): Uint8Array {
    if (out !== this.out || this.views.size >= MAX_CACHED_SEAL_VIEWS) {
      this.out = out;
      this.views.clear();
    }
    let v = this.views.get(off);
    if (v === undefined) {
      v = new Uint8Array(out.buffer, out.byteOffset + off, out.length - off); // not Buffer#subarray: Node's JavaScript, where this is one builtin
      this.views.set(off, v);
    }
    return v;
  }
}
