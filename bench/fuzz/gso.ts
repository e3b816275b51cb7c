// GSO split (src/tun/offload.ts): what a TUN read with a virtio-net header
// becomes. Inputs: TCP super-packets of random size and segment size (IPv4
// with or without options, IPv6), plain TCP/UDP packets with a partial
// checksum, mutations of both, random bytes. Checked for every packet
// vnetPackets accepts: lengths in the IP header, IPv4 header and TCP/UDP
// checksums that verify, sequence numbers, and the payload bytes preserved
// in order, with no segment missing.
import { vnetPackets, VNET_HDR_LEN, VNET_F_NEEDS_CSUM, GSO_NONE, GSO_TCPV4, GSO_TCPV6, writeVnetHdr } from '../../src/tun/offload.js';
import { check, fuzzLoop, type FuzzTarget } from './harness.js';
import { mutateBytes, randomBytes } from './mutate.js';
import {
  buildTcp,
  buildUdp,
  csum,
  ipv4HeaderOk,
  l4ChecksumOk,
  PROTO_TCP,
  PROTO_UDP,
  pseudoSum,
  randomTcpFields,
  TCP_ACK,
  TCP_FIN,
  TCP_PSH,
} from './packets.js';
import type { Rng } from './rng.js';

/** The largest TUN read: a 64 KiB super-packet plus its virtio header. */
const MAX_READ = 65535 + VNET_HDR_LEN;

function gsoSize(rng: Rng): number {
  const r = rng.int(4);
  // TCP's smallest MSS is 48 (net.ipv4.tcp_min_snd_mss); mutations reach the smaller ones
  if (r === 0) return rng.range(48, 96);
  if (r === 1) return rng.pick([536, 1220, 1240, 1280, 1360, 1380, 1420, 1440, 1448, 1460]);
  return rng.range(48, 9000);
}

/** A super-packet as the kernel hands it over: headers once, the whole payload, a partial TCP checksum. */
function superPacket(rng: Rng): Buffer {
  const f = randomTcpFields(rng);
  if (!f.v6 && rng.chance(0.2)) f.ipOptions = rng.bytes(4 * rng.range(1, 10));
  f.flags = TCP_ACK | (rng.chance(0.3) ? TCP_PSH : 0) | (rng.chance(0.05) ? TCP_FIN : 0) | (rng.chance(0.05) ? 0x80 : 0);
  const hdrLen = (f.v6 ? 40 : 20 + f.ipOptions.length) + 20 + f.tcpOptions.length;
  f.payload = rng.bytes(rng.length(65535 - hdrLen));
  const p = buildTcp(f);
  const ipLen = hdrLen - 20 - f.tcpOptions.length;
  // the kernel leaves the pseudo-header sum (of the whole super-packet) in the field
  p.writeUInt16BE(csum(p, 0, 0, pseudoSum(p, PROTO_TCP, p.length - ipLen)), ipLen + 16);
  const out = Buffer.alloc(VNET_HDR_LEN + p.length);
  writeVnetHdr(out, 0, {
    flags: VNET_F_NEEDS_CSUM,
    gsoType: (f.v6 ? GSO_TCPV6 : GSO_TCPV4) | (rng.chance(0.1) ? 0x80 : 0),
    hdrLen,
    gsoSize: gsoSize(rng),
    csumStart: ipLen,
    csumOffset: 16,
  });
  p.copy(out, VNET_HDR_LEN);
  return out;
}

/** A plain packet whose checksum the kernel left for us to finish (CHECKSUM_PARTIAL). */
function partialPacket(rng: Rng): Buffer {
  const v6 = rng.bool();
  const udp = rng.bool();
  const payload = rng.bytes(rng.length(1500));
  let p: Buffer;
  let off: number;
  if (udp) {
    p = buildUdp(rng, v6, payload);
    off = 6;
  } else {
    const f = randomTcpFields(rng, v6);
    f.payload = payload;
    p = buildTcp(f);
    off = 16;
  }
  const ipLen = v6 ? 40 : 20;
  p.writeUInt16BE(csum(p, 0, 0, pseudoSum(p, udp ? PROTO_UDP : PROTO_TCP, p.length - ipLen)), ipLen + off);
  const out = Buffer.alloc(VNET_HDR_LEN + p.length);
  writeVnetHdr(out, 0, { flags: VNET_F_NEEDS_CSUM, gsoType: GSO_NONE, hdrLen: 0, gsoSize: 0, csumStart: ipLen, csumOffset: off });
  p.copy(out, VNET_HDR_LEN);
  return out;
}

function input(rng: Rng): { b: Buffer; valid: boolean } {
  const r = rng.int(10);
  if (r === 0) return { b: randomBytes(rng, 2048), valid: false };
  const make = (): Buffer => (rng.chance(0.75) ? superPacket(rng) : partialPacket(rng));
  const valid = make();
  if (r < 5) return { b: valid, valid: true };
  const b = mutateBytes(rng, valid, rng.chance(0.2) ? make() : undefined);
  return { b: b.length > MAX_READ ? b.subarray(0, MAX_READ) : b, valid: false };
}

function checkGso(b: Buffer, packets: Buffer[]): void {
  const p = b.subarray(VNET_HDR_LEN);
  const v6 = (b[1]! & 0x7f) === GSO_TCPV6;
  const ipLen = b.readUInt16LE(6);
  const hdrEnd = ipLen + (p[ipLen + 12]! >> 4) * 4;
  const mss = b.readUInt16LE(4);
  const payload = p.subarray(hdrEnd);
  const want = Math.max(1, Math.ceil(payload.length / mss));
  check(packets.length === want, `split into ${packets.length} segments, ${want} expected (payload ${payload.length}, gso size ${mss})`);
  const seq0 = p.readUInt32BE(ipLen + 4);
  let at = 0;
  packets.forEach((s, i) => {
    check(s.length >= hdrEnd && s.length - hdrEnd <= mss, `segment ${i} is ${s.length} bytes (headers ${hdrEnd}, gso size ${mss})`);
    if (v6) check(s.readUInt16BE(4) === s.length - 40, `segment ${i}: IPv6 payload length ${s.readUInt16BE(4)} for ${s.length} bytes`);
    else {
      check(s.readUInt16BE(2) === s.length, `segment ${i}: IPv4 total length ${s.readUInt16BE(2)} for ${s.length} bytes`);
      check(ipv4HeaderOk(s), `segment ${i}: IPv4 header checksum does not verify`);
    }
    check(l4ChecksumOk(s, ipLen, PROTO_TCP), `segment ${i}: TCP checksum does not verify`);
    check(s.readUInt32BE(ipLen + 4) === (seq0 + at) >>> 0, `segment ${i}: sequence number is not the payload offset`);
    const data = s.subarray(hdrEnd);
    check(data.equals(payload.subarray(at, at + data.length)), `segment ${i}: payload bytes differ from the super-packet's at offset ${at}`);
    at += data.length;
  });
  check(at === payload.length, `segments carry ${at} of ${payload.length} payload bytes`);
}

const target: FuzzTarget = {
  name: 'gso',
  kind: 'pure',
  description: 'vnetPackets/gsoSplit/completeChecksum: segment lengths, checksums, sequence numbers, payload preserved',
  run: (rng, iterations, onProgress) =>
    fuzzLoop(rng, iterations, onProgress, (r, ctx) => {
      const { b, valid } = input(r);
      ctx.input = b;
      const got = vnetPackets(b, b.length);
      if (!got) {
        check(!valid, 'a well-formed packet was refused');
        return 'rejected';
      }
      if (got.gso) checkGso(b, got.packets);
      else {
        check(got.packets.length === 1 && got.packets[0]!.length === b.length - VNET_HDR_LEN, 'a plain packet changed length');
        if (valid && b[0]! & VNET_F_NEEDS_CSUM) {
          const p = got.packets[0]!;
          const l4 = b.readUInt16LE(6);
          check(l4ChecksumOk(p, l4, b.readUInt16LE(8) === 6 ? PROTO_UDP : PROTO_TCP), 'the finished checksum does not verify');
        }
      }
      return 'accepted';
    }),
};
export default target;
