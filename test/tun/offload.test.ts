// TUN offload arithmetic: splitting TCP super-packets, finishing partial
// checksums and merging segments, checked against packets built independently
// here (the tests' own checksum code) and by round trips merge → split.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { coalesce, writeMerged } from '../../src/tun/gro.js';
import { completeChecksum, GSO_TCPV4, GSO_TCPV6, gsoSplit, readVnetHdr, VNET_F_NEEDS_CSUM, type VnetHdr } from '../../src/tun/offload.js';

function onesSum(parts: Buffer[]): number {
  let s = 0;
  for (const b of parts) for (let i = 0; i < b.length; i += 2) s += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

function pseudo(v4: boolean, pkt: Buffer, proto: number, len: number): Buffer {
  const addrs = v4 ? pkt.subarray(12, 20) : pkt.subarray(8, 40);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(proto, 0);
  tail.writeUInt16BE(len, 2);
  return Buffer.concat([addrs, tail]);
}

interface Seg {
  v4?: boolean;
  sport?: number;
  seq: number;
  ack?: number;
  flags?: number;
  id?: number;
  payload: Buffer;
  options?: Buffer;
}

/** A TCP segment with correct IP and TCP checksums. */
function tcp(s: Seg): Buffer {
  const v4 = s.v4 ?? true;
  const ipLen = v4 ? 20 : 40;
  const opts = s.options ?? Buffer.alloc(0);
  const thl = 20 + opts.length;
  const p = Buffer.alloc(ipLen + thl + s.payload.length);
  if (v4) {
    p[0] = 0x45;
    p.writeUInt16BE(p.length, 2);
    p.writeUInt16BE(s.id ?? 100, 4);
    p[6] = 0x40; // DF
    p[8] = 64;
    p[9] = 6;
    Buffer.from([10, 0, 0, 1, 10, 0, 0, 2]).copy(p, 12);
    p.writeUInt16BE(~onesSum([p.subarray(0, 20)]) & 0xffff, 10);
  } else {
    p[0] = 0x60;
    p.writeUInt16BE(p.length - 40, 4);
    p[6] = 6;
    p[7] = 64;
    Buffer.from('fd000000000000000000000000000001fd000000000000000000000000000002', 'hex').copy(p, 8);
  }
  const t = ipLen;
  p.writeUInt16BE(s.sport ?? 40000, t);
  p.writeUInt16BE(5201, t + 2);
  p.writeUInt32BE(s.seq >>> 0, t + 4);
  p.writeUInt32BE(s.ack ?? 7777, t + 8);
  p[t + 12] = (thl / 4) << 4;
  p[t + 13] = s.flags ?? 0x10;
  p.writeUInt16BE(500, t + 14);
  opts.copy(p, t + 20);
  s.payload.copy(p, t + thl);
  p.writeUInt16BE(~onesSum([pseudo(v4, p, 6, p.length - t), p.subarray(t)]) & 0xffff, t + 16);
  return p;
}

const payload = (n: number, seed: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff));

/** Splits into one buffer, segments 8-aligned as in the ring, with a gap between them that must stay untouched. */
function split(pkt: Buffer, h: VnetHdr): Buffer[] {
  const out = Buffer.alloc(4 * pkt.length, 0xee);
  const at: Array<[number, number]> = [];
  let pos = 0;
  const n = gsoSplit(pkt, 0, pkt.length, h, out, (len) => {
    at.push([pos, len]);
    const p = pos;
    pos += ((len + 7) & ~7) + 8;
    return p;
  });
  assert.equal(n, at.length, 'every placed segment is counted');
  for (const [p, len] of at)
    assert.ok(
      out.subarray(p + len, ((p + len + 7) & ~7) + 8).every((x) => x === 0xee),
      'nothing written outside a segment',
    );
  return at.map(([p, len]) => out.subarray(p, p + len));
}

for (const v4 of [true, false]) {
  const fam = v4 ? 'IPv4' : 'IPv6';
  test(`${fam}: a TCP super-packet splits into the segments the sender would have sent, checksums included`, () => {
    const mss = 1380;
    const data = payload(mss * 3 + 500, 3);
    const seq = 0xfffff000; // the sequence number wraps inside the packet
    const big = tcp({ v4, seq, flags: 0x18 | 0x80, id: 65534, payload: data });
    const ipLen = v4 ? 20 : 40;
    // as the kernel hands it over: CHECKSUM_PARTIAL, the pseudo-header sum in the field
    big.writeUInt16BE(onesSum([pseudo(v4, big, 6, big.length - ipLen)]), ipLen + 16);
    const segs = split(big, {
      flags: VNET_F_NEEDS_CSUM,
      gsoType: v4 ? GSO_TCPV4 : GSO_TCPV6,
      hdrLen: ipLen + 20,
      gsoSize: mss,
      csumStart: ipLen,
      csumOffset: 16,
    });
    assert.equal(segs.length, 4);
    segs.forEach((s, i) => {
      const last = i === segs.length - 1;
      const want = tcp({
        v4,
        seq: (seq + i * mss) >>> 0,
        flags: 0x10 | (last ? 0x08 : 0) | (i === 0 ? 0x80 : 0),
        id: (65534 + i) & 0xffff,
        payload: data.subarray(i * mss, (i + 1) * mss),
      });
      assert.deepEqual(s, want, `segment ${i}`);
    });
  });

  test(`${fam}: merged segments split back into exactly the originals`, () => {
    const mss = 1368;
    const options = Buffer.from([1, 1, 8, 10, 0, 0, 1, 2, 0, 0, 3, 4]); // NOP NOP timestamps
    const segs = [0, 1, 2, 3].map((i) => tcp({ v4, seq: 1000 + i * mss, id: 7 + i, options, payload: payload(mss, i) }));
    segs.push(tcp({ v4, seq: 1000 + 4 * mss, id: 11, options, flags: 0x18, payload: payload(200, 9) }));
    const outs = coalesce(segs);
    assert.equal(outs.length, 1);
    const o = outs[0]!;
    assert.ok(o.hdr);
    const h = readVnetHdr(o.hdr);
    assert.equal(h.gsoType, v4 ? GSO_TCPV4 : GSO_TCPV6);
    assert.equal(h.gsoSize, mss);
    assert.equal(h.flags, VNET_F_NEEDS_CSUM);
    assert.deepEqual(split(o.pkt, h), segs);
  });
}

test('a CHECKSUM_PARTIAL UDP packet is finished with the checksum of the whole datagram', () => {
  const p = Buffer.alloc(20 + 8 + 33);
  p[0] = 0x45;
  p.writeUInt16BE(p.length, 2);
  p[9] = 17;
  Buffer.from([10, 0, 0, 1, 10, 0, 0, 2]).copy(p, 12);
  p.writeUInt16BE(1234, 20);
  p.writeUInt16BE(53, 22);
  p.writeUInt16BE(8 + 33, 24);
  payload(33, 5).copy(p, 28);
  const full = ~onesSum([pseudo(true, p, 17, 41), p.subarray(20)]) & 0xffff;
  p.writeUInt16BE(onesSum([pseudo(true, p, 17, 41)]), 26);
  assert.equal(completeChecksum(p, 0, p.length, 20, 6), true);
  assert.equal(p.readUInt16BE(26), full || 0xffff);
  assert.equal(completeChecksum(p, 0, p.length, 20, 40), false, 'a checksum field past the end is refused');
});

test('malformed super-packets are refused, not split', () => {
  const good = tcp({ seq: 1, payload: payload(3000, 1) });
  const h: VnetHdr = { flags: 1, gsoType: GSO_TCPV4, hdrLen: 40, gsoSize: 1000, csumStart: 20, csumOffset: 16 };
  let placed = 0;
  const out = Buffer.alloc(10000);
  const place = (): number => (placed++, 0);
  assert.equal(gsoSplit(good, 0, good.length, { ...h, gsoSize: 0 }, out, place), -1);
  assert.equal(gsoSplit(good, 0, good.length, { ...h, gsoType: GSO_TCPV6 }, out, place), -1, 'family mismatch');
  assert.equal(gsoSplit(good, 0, good.length, { ...h, csumStart: 2990 }, out, place), -1, 'TCP header past the end');
  assert.equal(gsoSplit(good, 0, good.length, { ...h, gsoType: 3 }, out, place), -1, 'UDP GSO was never enabled');
  assert.equal(placed, 0);
  assert.equal(
    gsoSplit(good, 0, good.length, h, out, () => -1),
    0,
    'a stopped ring ends the split',
  );
});

test('merging keeps each flow in order and refuses what the kernel would refuse', () => {
  const mss = 1000;
  const a = (i: number, o: Partial<Seg> = {}): Buffer => tcp({ seq: i * mss, id: i, payload: payload(mss, i), ...o });
  const b = (i: number, o: Partial<Seg> = {}): Buffer => tcp({ sport: 40001, seq: 50000 + i * mss, id: 100 + i, payload: payload(mss, 50 + i), ...o });
  const shape = (pkts: Buffer[]): string[] =>
    coalesce(pkts).map((o) => (o.hdr ? `${o.pkt.readUInt16BE(20)}:${(o.pkt.length - 40) / mss}` : `${o.pkt.readUInt16BE(20)}`));

  assert.deepEqual(shape([a(0), b(0), a(1), b(1), a(2)]), ['40000:3', '40001:2'], 'interleaved flows merge separately');
  assert.deepEqual(shape([a(0), a(2), a(3)]), ['40000', '40000:2'], 'a gap starts a new run');
  assert.deepEqual(shape([a(0), a(1), a(2, { flags: 0x11 }), a(3)]), ['40000:2', '40000', '40000'], 'nothing overtakes a FIN');
  assert.deepEqual(shape([a(0), a(1, { ack: 1 })]), ['40000', '40000'], 'different ACK numbers');
  assert.deepEqual(shape([a(0), a(1, { id: 9 })]), ['40000', '40000'], 'IPv4 IDs must count up');
  assert.deepEqual(shape([a(0, { flags: 0x18 }), a(1)]), ['40000', '40000'], 'PSH ends a run');
  assert.deepEqual(shape([a(0), tcp({ seq: mss, id: 1, payload: payload(10, 1) }), a(2)]), ['40000:1.01', '40000'], 'a short segment ends a run');
  const many = Array.from({ length: 70 }, (_, i) => a(i));
  const merged = coalesce(many);
  assert.ok(
    merged.every((o) => o.pkt.length <= 65535),
    'no merged packet beyond 64 KiB',
  );
  assert.equal(
    merged.reduce((n, o) => n + (o.pkt.length - 40) / mss, 0),
    70,
    'every segment accounted for',
  );
  const udp = Buffer.from(a(5));
  udp[9] = 17;
  assert.deepEqual(
    coalesce([udp, udp]).map((o) => o.hdr),
    [null, null],
    'non-TCP passes unchanged',
  );
});

test('a merged packet the kernel refuses goes out as its segments, in order; nothing is lost', () => {
  const segs = [0, 1, 2].map((i) => tcp({ seq: i * 1000, id: i, payload: payload(1000, i) }));
  const udp = Buffer.from(segs[0]!);
  udp[9] = 17;
  const written: Buffer[] = [];
  let gsoOffered = 0;
  const r = writeMerged([...segs, udp], (hdr, pkt) => {
    if (hdr) {
      gsoOffered++;
      return false; // a kernel that takes no GSO writes
    }
    written.push(pkt);
    return true;
  });
  assert.equal(gsoOffered, 1);
  assert.deepEqual(r, { merged: 2, refused: 1 });
  assert.deepEqual(written, [...segs, udp]);
  const accepted: Array<Buffer | null> = [];
  assert.deepEqual(
    writeMerged(segs, (hdr) => (accepted.push(hdr), true)),
    { merged: 2, refused: 0 },
  );
  assert.equal(accepted.length, 1, 'one write for the three segments');
});
