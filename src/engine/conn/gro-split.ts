// Splitting a UDP read that the kernel merged (UDP_GRO) back into datagrams
// when the read did not bring the segment size: libuv's reads on the event
// loop collect no control message. The kernel merges only datagrams of one
// flow and of one size, the last possibly shorter, so a merged buffer is
// segments of some size S each starting at k*S. What those starts hold tells
// S: a WireGuard transport message begins with type 4 and the receiver's
// index, the same 8 bytes for every segment of one flow; handshake messages
// have fixed sizes; anything else (path probes, STUN) repeats its first 8
// bytes when same-size messages of one sender merge. A wrong split can only
// make a datagram fail authentication, like a corrupted one, and is counted.

/** WireGuard message types with a fixed size: initiation, response, cookie reply */
const FIXED_SIZES = new Map<number, number>([
  [1, 148],
  [2, 92],
  [3, 64],
]);
const TRANSPORT_TYPE = 4;
/** the smallest transport message: 16-byte header and 16-byte tag (a keepalive) */
const TRANSPORT_MIN_BYTES = 32;
/** the bytes every segment of one merged flow repeats: type, and for transport messages the receiver index */
const HEADER_BYTES = 8;
/** the smallest segment of any other kind that is searched for: below this a repeat of 8 bytes is likely chance */
const OTHER_MIN_BYTES = 16;

/** one datagram: deliver it as it is */
export const SPLIT_SINGLE = 0;
/** split into two or more segments, each given to `each` */
export const SPLIT_DONE = 1;
/** looks merged (its header repeats) but the segments are not consistent: delivered whole, to be dropped */
export const SPLIT_FAILED = 2;
export type SplitResult = typeof SPLIT_SINGLE | typeof SPLIT_DONE | typeof SPLIT_FAILED;

function messageType(buf: Buffer): number {
  return buf[1] === 0 && buf[2] === 0 && buf[3] === 0 ? buf[0]! : -1;
}

/**
 * Calls `each` with each datagram of `buf` (subarrays, in order) when `buf`
 * is a merged read, and returns what it found; on SPLIT_SINGLE and SPLIT_FAILED `each`
 * is not called and the caller delivers `buf` itself.
 */
export function splitMerged(buf: Buffer, each: (seg: Buffer) => void): SplitResult {
  const len = buf.length;
  const type = messageType(buf);
  const fixed = FIXED_SIZES.get(type);
  if (fixed !== undefined) {
    if (len <= fixed || len % fixed !== 0) return SPLIT_SINGLE;
    for (let off = fixed; off < len; off += fixed) if (buf.readUInt32LE(off) !== type) return SPLIT_FAILED;
    for (let off = 0; off < len; off += fixed) each(buf.subarray(off, off + fixed));
    return SPLIT_DONE;
  }
  const min = type === TRANSPORT_TYPE ? TRANSPORT_MIN_BYTES : OTHER_MIN_BYTES;
  if (len < 2 * min) return SPLIT_SINGLE;
  const header = buf.subarray(0, HEADER_BYTES);
  const size = buf.indexOf(header, min);
  if (size < 0) return SPLIT_SINGLE;
  // every start k*size repeats the header, and the last segment is no longer than size and not too short
  let off = size;
  for (; off + size < len; off += size) if (buf.compare(header, 0, HEADER_BYTES, off, off + HEADER_BYTES) !== 0) return SPLIT_FAILED;
  const last = len - off;
  if (last < min || buf.compare(header, 0, HEADER_BYTES, off, off + HEADER_BYTES) !== 0) return SPLIT_FAILED;
  for (off = 0; off < len; off += size) each(buf.subarray(off, Math.min(off + size, len)));
  return SPLIT_DONE;
}
