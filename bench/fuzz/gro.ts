// GRO merge (src/tun/gro.ts): trains of TCP segments from a few flows (IPv4
// and IPv6), interleaved, with gaps, duplicates, PSH/FIN, changed ACKs,
// options or IDs, short segments, non-TCP packets, mutated and random ones.
// Checked: every input leaves exactly once (alone or inside one merged
// packet) and each flow keeps its order; a merged packet's lengths, IPv4
// header checksum, partial TCP checksum and virtio header are right, its
// payload is its parts' payloads in order, and splitting it again with
// gsoSplit gives back segments with the parts' lengths, sequence numbers and
// payloads (the GRO → GSO round trip). writeMerged falls back to the parts
// when a merged write is refused, losing nothing.
import { coalesce, writeMerged } from '../../src/tun/gro.js';
import { gsoSplit, readVnetHdr, GSO_TCPV4, GSO_TCPV6, VNET_F_NEEDS_CSUM } from '../../src/tun/offload.js';
import { check, fuzzLoop, type FuzzTarget } from './harness.js';
import { mutateBytes, randomBytes } from './mutate.js';
import { buildTcp, buildUdp, csum, ipv4HeaderOk, PROTO_TCP, pseudoSum, randomTcpFields, TCP_ACK, TCP_FIN, TCP_PSH, type TcpFields } from './packets.js';
import { Rng } from './rng.js';

/** Payload bytes are cut from this block: random enough to tell segments apart, and cheap (a batch carries up to ~700 KB). */
const POOL = new Rng(0x9a7).bytes(256 * 1024);

function payload(rng: Rng, n: number): Buffer {
  return n <= POOL.length ? POOL.subarray(rng.int(POOL.length - n + 1)).subarray(0, n) : rng.bytes(n);
}

function mss(rng: Rng): number {
  return rng.chance(0.3) ? rng.range(1, 64) : rng.pick([536, 1200, 1240, 1380, 1448, 1460, 8000]);
}

/** One flow's segments in order: a train of equal segments, perturbed now and then. */
function flow(rng: Rng): Buffer[] {
  const f: TcpFields = randomTcpFields(rng);
  const size = mss(rng);
  const n = rng.range(1, rng.chance(0.1) ? 120 : 24);
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const seg: TcpFields = { ...f, payload: payload(rng, size), flags: TCP_ACK };
    const r = rng.int(40);
    if (r === 0) seg.payload = payload(rng, rng.int(size));
    else if (r === 1) seg.flags |= TCP_PSH;
    else if (r === 2) seg.flags |= TCP_FIN;
    else if (r === 3) seg.ack = (seg.ack + 1) >>> 0;
    else if (r === 4) seg.seq = (seg.seq + 1) >>> 0;
    else if (r === 5) seg.id = (seg.id + 2) & 0xffff;
    else if (r === 6) seg.tcpOptions = rng.bytes(seg.tcpOptions.length);
    else if (r === 7) seg.tos ^= 4;
    else if (r === 8) seg.payload = Buffer.alloc(0);
    out.push(buildTcp(seg));
    if (r === 9 && out.length) out.push(Buffer.from(out[out.length - 1]!)); // a duplicate
    if (r === 10) out.pop(); // a gap
    f.seq = (f.seq + seg.payload.length) >>> 0;
    f.id = (f.id + 1) & 0xffff;
    f.window = rng.chance(0.9) ? f.window : rng.int(65536);
  }
  return out;
}

export function batch(rng: Rng): Buffer[] {
  const flows = Array.from({ length: rng.range(1, 4) }, () => flow(rng));
  const out: Buffer[] = [];
  // interleave, each flow in order
  while (flows.some((f) => f.length)) {
    const f = rng.pick(flows.filter((x) => x.length));
    out.push(f.shift()!);
    if (rng.chance(0.02)) out.push(buildUdp(rng, rng.bool(), rng.bytes(rng.length(200))));
    if (rng.chance(0.02)) out.push(randomBytes(rng, 100));
  }
  for (let k = rng.chance(0.3) ? rng.range(1, 3) : 0; k > 0 && out.length; k--) {
    const i = rng.int(out.length);
    out[i] = mutateBytes(rng, out[i]!, rng.pick(out));
  }
  return out;
}

/** Which flow a packet belongs to (addresses and ports), or null when it is not IPv4/IPv6 TCP. */
function flowKey(p: Buffer): string | null {
  const ver = p.length ? p[0]! >> 4 : 0;
  if (ver === 4 && p.length >= 24 && p[9] === PROTO_TCP) {
    const ihl = (p[0]! & 15) * 4;
    // shorter than a whole TCP header: not a TCP packet of any flow (the kernel drops it)
    return p.length >= ihl + 20 ? `4/${p.toString('hex', 12, 20)}/${p.toString('hex', ihl, ihl + 4)}/${ihl}` : null;
  }
  if (ver === 6 && p.length >= 60 && p[6] === PROTO_TCP) return `6/${p.toString('hex', 8, 44)}`;
  return null;
}

function checkMerged(hdr: Buffer, pkt: Buffer, parts: Buffer[]): void {
  const h = readVnetHdr(hdr);
  const v4 = pkt[0]! >> 4 === 4;
  const ipLen = v4 ? 20 : 40;
  check(parts.length >= 2, 'a merged packet of one part');
  check(
    h.flags === VNET_F_NEEDS_CSUM && h.gsoType === (v4 ? GSO_TCPV4 : GSO_TCPV6) && h.csumStart === ipLen && h.csumOffset === 16,
    `virtio header ${JSON.stringify(h)}`,
  );
  const hdrLen = h.hdrLen;
  let payloads = 0;
  parts.forEach((s, i) => {
    const n = s.length - hdrLen;
    check(n > 0 && n <= h.gsoSize, `part ${i} carries ${n} bytes, gso size ${h.gsoSize}`);
    if (i < parts.length - 1) check(n === h.gsoSize, `part ${i} of ${parts.length} is short (${n} < ${h.gsoSize}) but not last`);
    payloads += n;
  });
  check(pkt.length === hdrLen + payloads, `merged length ${pkt.length}, parts carry ${hdrLen} + ${payloads}`);
  check(pkt.subarray(hdrLen).equals(Buffer.concat(parts.map((s) => s.subarray(hdrLen)))), 'merged payload is not its parts in order');
  if (v4) {
    check(pkt.readUInt16BE(2) === pkt.length, 'merged IPv4 total length');
    check(ipv4HeaderOk(pkt), 'merged IPv4 header checksum');
  } else check(pkt.readUInt16BE(4) === pkt.length - 40 && pkt.length - 40 <= 65535, 'merged IPv6 payload length');
  check(
    pkt.readUInt16BE(ipLen + 16) === csum(pkt, 0, 0, pseudoSum(pkt, PROTO_TCP, pkt.length - ipLen)),
    'merged partial checksum is not the pseudo-header sum',
  );
  // the round trip: the kernel (or gsoSplit) cuts it back into the same segments
  const out = Buffer.alloc(pkt.length + parts.length * hdrLen);
  let pos = 0;
  const spans: [number, number][] = [];
  const n = gsoSplit(pkt, 0, pkt.length, h, out, (len) => (spans.push([pos, len]), (pos += len) - len));
  check(n === parts.length, `gsoSplit gave ${n} segments back, merged from ${parts.length}`);
  spans.forEach(([at, len], i) => {
    const seg = out.subarray(at, at + len);
    const part = parts[i]!;
    check(seg.length === part.length, `round trip: segment ${i} is ${seg.length} bytes, part was ${part.length}`);
    check(seg.readUInt32BE(ipLen + 4) === part.readUInt32BE(ipLen + 4), `round trip: segment ${i} sequence number`);
    check(seg.subarray(hdrLen).equals(part.subarray(hdrLen)), `round trip: segment ${i} payload`);
    // the IPv4 header up to the checksum, but of the fragment field only DF: the merge rules (the kernel's) ignore the reserved bit
    const same = (a: Buffer, b: Buffer): boolean =>
      a.subarray(0, 6).equals(b.subarray(0, 6)) && (a[6]! & 0x7f) === (b[6]! & 0x7f) && a.subarray(7, 10).equals(b.subarray(7, 10));
    check(!v4 || same(seg, part), `round trip: segment ${i} IPv4 header`);
  });
}

const target: FuzzTarget = {
  name: 'gro',
  kind: 'pure',
  description: 'coalesce/writeMerged: nothing lost or reordered within a flow, merged lengths/checksums/payload, GRO→GSO round trip',
  run: (rng, iterations, onProgress) =>
    fuzzLoop(rng, iterations, onProgress, (r, ctx) => {
      const pkts = batch(r);
      ctx.input = pkts;
      const outs = coalesce(pkts);
      const flat: Buffer[] = [];
      let merged = 0;
      for (const o of outs) {
        if (o.hdr) {
          merged++;
          checkMerged(o.hdr, o.pkt, o.parts);
          flat.push(...o.parts);
        } else flat.push(o.pkt);
      }
      check(
        flat.length === pkts.length && new Set(flat).size === pkts.length && flat.every((p) => pkts.includes(p)),
        `${pkts.length} packets in, ${flat.length} out`,
      );
      const order = new Map<string, Buffer[]>();
      for (const p of pkts) {
        const k = flowKey(p);
        if (k) order.set(k, [...(order.get(k) ?? []), p]);
      }
      for (const p of flat) {
        const k = flowKey(p);
        if (k) check(order.get(k)!.shift() === p, `flow ${k} left out of order`);
      }
      // the fallback: refused merged writes go out as their parts
      const written: Buffer[] = [];
      writeMerged(pkts, (hdr, pkt) => {
        if (hdr && r.bool()) return false;
        const m = hdr ? outs.find((o) => o.hdr && o.pkt.equals(pkt)) : undefined;
        written.push(...(m && 'parts' in m ? m.parts : [pkt]));
        return true;
      });
      check(written.length === pkts.length, `writeMerged wrote ${written.length} of ${pkts.length} packets`);
      return merged > 0 ? 'accepted' : 'rejected';
    }),
};
export default target;
