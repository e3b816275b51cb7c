// The cost of one TSO super-packet's worth of datagrams (45 of 1,452 bytes) on
// loopback, per sendmmsg call, three ways (docs/performance.md, "Batched sends"):
// plain (45 messages), GSO with the datagrams in their own 2 KiB slots (one
// message, 45 iovecs: what src/engine/conn/mmsg.ts does) and GSO from one
// contiguous buffer (one message, one iovec). The receiving socket is never
// read, so past its buffer the kernel drops: the figure is the send path and
// the receiver's segmentation, not a delivery rate. Rounds alternate the three.
// Run: node dist/bench/udp-gso.js [--rounds N] [--calls N]
import dgram from 'node:dgram';
import { koffi } from '../src/util/koffi.js';
import { udpHandle } from '../src/engine/conn/udp-reader.js';
import { median } from './procstat.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number): number => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : dflt);
const ROUNDS = opt('--rounds', 10);
const CALLS = opt('--calls', 2000);
const SEGS = 45;
const SIZE = 1452;
const SLOT = 2048;

const sendmmsg = koffi.load('libc.so.6').func('int sendmmsg(int, void *, unsigned int, int)') as (fd: number, v: unknown, n: number, f: number) => number;

function bound(): Promise<dgram.Socket> {
  const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 256 * 1024 });
  return new Promise((r) => s.bind(0, '127.0.0.1', () => r(s)));
}

/** Native memory for one layout: data, one sockaddr, iovecs, mmsghdrs, one cmsg; returns the mmsghdr array's address and count. */
function layout(kind: 'plain' | 'gso-iov' | 'gso-contig', port: number): { vec: bigint; n: number } {
  const dataLen = kind === 'gso-contig' ? SEGS * SIZE : SEGS * SLOT;
  const size = dataLen + 16 + SEGS * 16 + SEGS * 64 + 24;
  const mem = koffi.alloc('uint8', size);
  keep.push(mem);
  const base = koffi.address(mem);
  const dv = new DataView(koffi.view(mem, size));
  const name = dataLen;
  const iov = name + 16;
  const hdr = iov + SEGS * 16;
  const cmsg = hdr + SEGS * 64;
  dv.setUint16(name, 2, true); // AF_INET
  dv.setUint16(name + 2, port, false);
  dv.setUint32(name + 4, 0x7f000001, false);
  for (let i = 0; i < SEGS; i++) {
    dv.setBigUint64(iov + i * 16, base + BigInt(kind === 'gso-contig' ? i * SIZE : i * SLOT), true);
    dv.setBigUint64(iov + i * 16 + 8, BigInt(kind === 'gso-contig' && i === 0 ? SEGS * SIZE : SIZE), true);
  }
  dv.setBigUint64(cmsg, 18n, true);
  dv.setInt32(cmsg + 8, 17, true); // SOL_UDP
  dv.setInt32(cmsg + 12, 103, true); // UDP_SEGMENT
  dv.setUint16(cmsg + 16, SIZE, true);
  const n = kind === 'plain' ? SEGS : 1;
  for (let j = 0; j < n; j++) {
    const h = hdr + j * 64;
    dv.setBigUint64(h, base + BigInt(name), true);
    dv.setUint32(h + 8, 16, true);
    dv.setBigUint64(h + 16, base + BigInt(iov + j * 16), true);
    dv.setBigUint64(h + 24, BigInt(kind === 'plain' ? 1 : kind === 'gso-iov' ? SEGS : 1), true);
    if (kind !== 'plain') {
      dv.setBigUint64(h + 32, base + BigInt(cmsg), true);
      dv.setBigUint64(h + 40, 24n, true);
    }
  }
  return { vec: base + BigInt(hdr), n };
}
const keep: unknown[] = [];

const sink = await bound();
const src = await bound();
const fd = udpHandle(src)?.fd ?? -1;
const kinds = ['plain', 'gso-iov', 'gso-contig'] as const;
const layouts = new Map(kinds.map((k) => [k, layout(k, sink.address().port)]));
const perCall = new Map<string, number[]>(kinds.map((k) => [k, []]));
for (let r = 0; r < ROUNDS; r++) {
  for (const k of r % 2 === 0 ? kinds : [...kinds].reverse()) {
    const { vec, n } = layouts.get(k)!;
    const t0 = process.hrtime.bigint();
    for (let c = 0; c < CALLS; c++) {
      const sent = sendmmsg(fd, vec, n, 0x40);
      if (sent !== n) throw new Error(`${k}: sendmmsg took ${sent} of ${n} (errno ${koffi.errno()})`);
    }
    perCall.get(k)!.push(Number(process.hrtime.bigint() - t0) / 1000 / CALLS);
  }
}
for (const k of kinds) {
  const v = perCall.get(k)!;
  console.log(`${k}: ${median(v).toFixed(1)} µs per ${SEGS} datagrams (rounds ${Math.min(...v).toFixed(1)}–${Math.max(...v).toFixed(1)})`);
}
sink.close();
src.close();
