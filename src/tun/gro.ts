// Receive-side coalescing for a TUN device with offloads: consecutive
// in-order TCP segments of one flow, decrypted in one batch, are merged into
// one GSO packet so the kernel's TCP stack runs once per ~45 segments instead
// of once per segment (what NIC GRO does for real interfaces). The rules are
// the kernel's own (tcp_gro_receive): same flow, contiguous sequence numbers,
// same ACK and options, only ACK/PSH flags, equal segment sizes with a
// shorter or PSH segment closing the run, IPv4 IDs counting up.
//
// Checksums of merged segments are not verified: the kernel takes a
// NEEDS_CSUM packet as locally built. Integrity comes from the AEAD that
// authenticated every segment; a peer can only misstate checksums of its own
// flows. A segment the rules refuse is written unchanged.
import { fold, GSO_TCPV4, GSO_TCPV6, PROTO_TCP, pseudoHeaderSum, sum16, TCP_PSH, VNET_F_NEEDS_CSUM, VNET_HDR_LEN, writeVnetHdr } from './offload.js';

const TCP_ACK = 0x10;
const MAX_GSO_BYTES = 65535;
/** open runs looked at per segment: flows interleave in a batch, but rarely many */
const MAX_OPEN_RUNS = 8;

interface Seg {
  pkt: Buffer;
  v4: boolean;
  ipLen: number;
  hdrLen: number;
  payload: number;
  seq: number;
  flags: number;
  id: number;
}

interface Run {
  segs: Seg[];
  nextSeq: number;
  gsoSize: number;
  bytes: number;
  closed: boolean;
}

/** A packet to write as it is, or a merged one with the segments it was made of (to write instead if the kernel refuses it). */
export type Output = { hdr: null; pkt: Buffer } | { hdr: Buffer; pkt: Buffer; parts: Buffer[] };

/** Header facts of a segment that may be merged, or null if it must go alone. */
function parse(p: Buffer): Seg | null {
  if (p.length < 40) return null;
  const ver = p[0]! >> 4;
  let ipLen: number;
  if (ver === 4) {
    ipLen = (p[0]! & 15) * 4;
    // no options, TCP, not a fragment
    if (ipLen !== 20 || p[9] !== PROTO_TCP || (p.readUInt16BE(6) & 0x3fff) !== 0 || p.readUInt16BE(2) !== p.length) return null;
  } else if (ver === 6) {
    ipLen = 40;
    if (p.length < 60 || p[6] !== PROTO_TCP || 40 + p.readUInt16BE(4) !== p.length) return null;
  } else return null;
  const flags = p[ipLen + 13]!;
  if ((flags & ~TCP_PSH) !== TCP_ACK) return null;
  const hdrLen = ipLen + (p[ipLen + 12]! >> 4) * 4;
  if (hdrLen < ipLen + 20 || hdrLen >= p.length) return null; // pure ACKs carry nothing to merge
  return { pkt: p, v4: ver === 4, ipLen, hdrLen, payload: p.length - hdrLen, seq: p.readUInt32BE(ipLen + 4), flags, id: ver === 4 ? p.readUInt16BE(4) : 0 };
}

function sameFlow(a: Seg, b: Seg): boolean {
  if (a.v4 !== b.v4) return false;
  const pa = a.pkt;
  const pb = b.pkt;
  // addresses, then both ports
  const [from, to] = a.v4 ? [12, 20] : [8, 40];
  for (let i = from; i < to; i++) if (pa[i] !== pb[i]) return false;
  return pa.readUInt32BE(a.ipLen) === pb.readUInt32BE(b.ipLen);
}

function canAppend(r: Run, s: Seg): boolean {
  const first = r.segs[0]!;
  const last = r.segs[r.segs.length - 1]!;
  if (r.closed || s.seq !== r.nextSeq || s.hdrLen !== first.hdrLen || s.payload > r.gsoSize) return false;
  if (r.bytes + s.payload + first.hdrLen - (first.v4 ? 0 : 40) > MAX_GSO_BYTES) return false;
  const a = first.pkt;
  const b = s.pkt;
  const t = first.ipLen;
  if (a.readUInt32BE(t + 8) !== b.readUInt32BE(t + 8)) return false; // ACK number
  for (let i = t + 20; i < first.hdrLen; i++) if (a[i] !== b[i]) return false; // options
  if (first.v4) {
    // TOS, TTL and the DF bit as the first; IDs count up
    if (a[1] !== b[1] || a[8] !== b[8] || (a[6]! & 0x40) !== (b[6]! & 0x40) || s.id !== ((last.id + 1) & 0xffff)) return false;
  } else if (a.readUInt32BE(0) !== b.readUInt32BE(0) || a[7] !== b[7]) return false; // traffic class, flow label, hop limit
  return true;
}

/** Merges the runs of `pkts`, keeping every flow's order; unmergeable packets pass as they are. */
export function coalesce(pkts: Buffer[]): Output[] {
  return group(pkts).map((it) => (Buffer.isBuffer(it) ? { hdr: null, pkt: it } : it.segs.length === 1 ? { hdr: null, pkt: it.segs[0]!.pkt } : merge(it)));
}

/** The first `count` of `pkts` in order, a run of segments to merge as one Run, every other packet as itself. */
function group(pkts: Buffer[], count = pkts.length): Array<Run | Buffer> {
  const items: Array<Run | Buffer> = [];
  const open: Run[] = [];
  for (let k = 0; k < count; k++) {
    const p = pkts[k]!;
    const s = parse(p);
    let run: Run | undefined;
    for (let i = open.length - 1; i >= 0; i--) {
      const r = open[i]!;
      if (s ? sameFlow(r.segs[0]!, s) : p.length >= 40 && sameRawFlow(r.segs[0]!, p)) {
        run = r;
        break;
      }
    }
    if (!s) {
      if (run) run.closed = true; // nothing of this flow may overtake the packet
      items.push(p);
      continue;
    }
    if (run && canAppend(run, s)) {
      run.segs.push(s);
      run.nextSeq = (s.seq + s.payload) >>> 0;
      run.bytes += s.payload;
      if (s.payload < run.gsoSize || s.flags & TCP_PSH) run.closed = true;
      continue;
    }
    if (run) run.closed = true;
    const fresh: Run = { segs: [s], nextSeq: (s.seq + s.payload) >>> 0, gsoSize: s.payload, bytes: s.payload, closed: (s.flags & TCP_PSH) !== 0 };
    items.push(fresh);
    for (let i = open.length - 1; i >= 0; i--) if (open[i]!.closed) open.splice(i, 1);
    open.push(fresh);
    if (open.length > MAX_OPEN_RUNS) open.shift()!.closed = true;
  }
  return items;
}

/** Same addresses and ports for a packet `parse` refused (a FIN, a pure ACK…). */
function sameRawFlow(a: Seg, p: Buffer): boolean {
  const ver = p[0]! >> 4;
  if ((ver === 4) !== a.v4 || (ver !== 4 && ver !== 6)) return false;
  if (ver === 4 && ((p[0]! & 15) * 4 !== a.ipLen || p[9] !== PROTO_TCP)) return false;
  if (ver === 6 && p[6] !== PROTO_TCP) return false;
  const [from, to] = a.v4 ? [12, 20] : [8, 40];
  for (let i = from; i < to; i++) if (a.pkt[i] !== p[i]) return false;
  return p.length >= a.ipLen + 4 && a.pkt.readUInt32BE(a.ipLen) === p.readUInt32BE(a.ipLen);
}

/** Memory a merged packet is built in and written from, reused for the next: one allocation per device, not per merge. */
export interface MergeScratch {
  /** MAX_GSO_BYTES long */
  buf: Buffer;
  /** VNET_HDR_LEN long */
  hdr: Buffer;
}

export function mergeScratch(): MergeScratch {
  return { buf: Buffer.allocUnsafeSlow(MAX_GSO_BYTES), hdr: Buffer.alloc(VNET_HDR_LEN) };
}

function merge(r: Run, scratch: MergeScratch | null = null): Output {
  const first = r.segs[0]!;
  const last = r.segs[r.segs.length - 1]!;
  const hdrLen = first.hdrLen;
  const total = hdrLen + r.bytes;
  // in the scratch, a view of it (one object per merged packet, ~45 segments)
  const out = scratch ? Buffer.from(scratch.buf.buffer, scratch.buf.byteOffset, total) : Buffer.allocUnsafe(total);
  first.pkt.copy(out, 0, 0, hdrLen);
  let pos = hdrLen;
  for (const s of r.segs) pos += s.pkt.copy(out, pos, s.hdrLen);
  const t = first.ipLen;
  out[t + 13] = first.flags | (last.flags & TCP_PSH);
  out.writeUInt16BE(last.pkt.readUInt16BE(t + 14), t + 14); // the newest window
  if (first.v4) {
    out.writeUInt16BE(total, 2);
    out.writeUInt16BE(0, 10);
    out.writeUInt16BE(~fold(sum16(out, 0, 20)) & 0xffff, 10);
  } else out.writeUInt16BE(total - 40, 4);
  // CHECKSUM_PARTIAL: the field holds the pseudo-header sum, the kernel adds the rest
  out.writeUInt16BE(fold(pseudoHeaderSum(out, 0, PROTO_TCP, total - t)), t + 16);
  const hdr = scratch ? scratch.hdr : Buffer.alloc(VNET_HDR_LEN);
  writeVnetHdr(hdr, 0, { flags: VNET_F_NEEDS_CSUM, gsoType: first.v4 ? GSO_TCPV4 : GSO_TCPV6, hdrLen, gsoSize: r.gsoSize, csumStart: t, csumOffset: 16 });
  return { hdr, pkt: out, parts: scratch ? NO_PARTS : r.segs.map((s) => s.pkt) };
}
const NO_PARTS: Buffer[] = [];

/**
 * Writes one turn's packets through `write` (false = the kernel refused it),
 * merged where the rules allow. A merged packet the kernel refuses goes out
 * as its own segments, so nothing is lost if a kernel takes no GSO writes.
 * Returns how many packets needed no write of their own and how many merged
 * writes were refused.
 */
export function writeMerged(
  pkts: Buffer[],
  write: (hdr: Buffer | null, pkt: Buffer) => boolean,
  scratch: MergeScratch = mergeScratch(),
  count = pkts.length,
): { merged: number; refused: number } {
  const items = group(pkts, count);
  let refused = 0;
  for (const it of items) {
    if (Buffer.isBuffer(it)) write(null, it);
    else if (it.segs.length === 1) write(null, it.segs[0]!.pkt);
    else {
      // built in the scratch just before its write, so one scratch serves every run of the turn
      const o = merge(it, scratch);
      if (write(o.hdr, o.pkt)) continue;
      refused++;
      for (const s of it.segs) write(null, s.pkt);
    }
  }
  return { merged: count - items.length, refused };
}
