// Fixed-width fields of per-packet data, read and written byte by byte.
// Buffer's own readUInt32LE, writeUInt32LE, copy and fill are JavaScript
// inside Node: each checks its arguments through further helpers, and V8
// compiles every one of them on its own before it can inline it. On a new
// tunnel that would be about a dozen extra compile jobs per engine competing
// for the two cores during the first pings, and until they finished the packets
// would run those helpers in the interpreter (docs/performance.md, "Per-packet garbage"). Element
// loads and stores, and the typed-array builtins `set` and `fill`, are native
// from the first packet. Callers check bounds first: unlike Buffer's methods,
// these do not throw past the end.

/** Unsigned 32-bit little-endian at `o`. */
export function getU32le(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16)) + b[o + 3]! * 0x100_0000;
}

/** Writes the low 32 bits of `v`, little-endian, at `o`. */
export function putU32le(b: Uint8Array, o: number, v: number): void {
  b[o] = v;
  b[o + 1] = v >>> 8;
  b[o + 2] = v >>> 16;
  b[o + 3] = v >>> 24;
}

/** Unsigned 16-bit little-endian at `o` (virtio-net headers). */
export function getU16le(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8);
}

/** Unsigned 16-bit big-endian (network order) at `o`. */
export function getU16be(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

/** Zeroes [from, to): the padding before a tag is at most 15 bytes, less than a call to fill costs. */
export function zeroRange(b: Uint8Array, from: number, to: number): void {
  for (let i = from; i < to; i++) b[i] = 0;
}
