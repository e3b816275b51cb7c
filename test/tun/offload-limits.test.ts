// vnetPackets at the edges the fuzzer found: the smallest MSS with the
// largest headers (every segment must come out, none cut off), a virtio
// header whose csum_start puts the TCP header inside the IPv6 header, and a
// segment size no kernel sends (more segments than MAX_GSO_SEGMENTS).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GSO_TCPV6, MAX_GSO_SEGMENTS, vnetPackets, VNET_F_NEEDS_CSUM, VNET_HDR_LEN, writeVnetHdr } from '../../src/tun/offload.js';
import { buildTcp, l4ChecksumOk, PROTO_TCP, randomTcpFields } from '../../bench/fuzz/packets.js';
import { Rng } from '../../bench/fuzz/rng.js';

/** An IPv6 super-packet with 40 bytes of TCP options (100 bytes of headers) and `payload` bytes, as a TUN read. */
function superPacketV6(payload: number, gsoSize: number, csumStart = 40): Buffer {
  const rng = new Rng(42);
  const f = randomTcpFields(rng, true);
  f.tcpOptions = Buffer.alloc(40, 1);
  f.payload = rng.bytes(payload);
  const p = buildTcp(f);
  const out = Buffer.alloc(VNET_HDR_LEN + p.length);
  writeVnetHdr(out, 0, { flags: VNET_F_NEEDS_CSUM, gsoType: GSO_TCPV6, hdrLen: 100, gsoSize, csumStart, csumOffset: 16 });
  p.copy(out, VNET_HDR_LEN);
  return out;
}

test('the smallest MSS with the largest headers: every segment comes out, with all the payload and valid checksums', () => {
  const payload = 65535 - 100;
  const b = superPacketV6(payload, 48);
  const got = vnetPackets(b, b.length);
  assert.ok(got);
  assert.equal(got.packets.length, Math.ceil(payload / 48));
  const data = Buffer.concat(got.packets.map((s) => s.subarray(100)));
  assert.ok(data.equals(b.subarray(VNET_HDR_LEN + 100)), 'payload preserved in order');
  for (const s of got.packets) assert.ok(l4ChecksumOk(s, 40, PROTO_TCP));
});

test('csum_start inside the IPv6 header is refused, not split into segments with wrong checksums', () => {
  const b = superPacketV6(3000, 1000, 0);
  assert.equal(vnetPackets(b, b.length), null);
});

test('a segment size that would make more than MAX_GSO_SEGMENTS segments is refused', () => {
  const b = superPacketV6(MAX_GSO_SEGMENTS * 2, 1);
  assert.equal(vnetPackets(b, b.length), null);
});
