// Per-packet TTL on the shared UDP socket: the control message's bytes, and a
// real datagram sent with it over loopback while the socket's own sends go on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { CMSG_SPACE_INT, sockaddr, ttlCmsg } from '../../src/engine/conn/ttl-send.js';
import { UdpBind } from '../../src/engine/conn/udp.js';
import type { Endpoint } from '../../src/engine/conn/endpoint.js';

test('the TTL control message: cmsghdr (len 20, level, type) and the int, padded to CMSG_SPACE', () => {
  const v4 = ttlCmsg(4, 2);
  assert.equal(v4.length, CMSG_SPACE_INT);
  assert.deepEqual([Number(v4.readBigUInt64LE(0)), v4.readInt32LE(8), v4.readInt32LE(12), v4.readInt32LE(16)], [20, 0, 2, 2], 'IPPROTO_IP, IP_TTL');
  const v6 = ttlCmsg(6, 3);
  assert.deepEqual([v6.readInt32LE(8), v6.readInt32LE(12), v6.readInt32LE(16)], [41, 52, 3], 'IPPROTO_IPV6, IPV6_HOPLIMIT');
  for (const bad of [0, 256, 1.5, -1]) assert.throws(() => ttlCmsg(4, bad), RangeError);
});

test('sockaddr: the family must match, the port must be a port', () => {
  const s = sockaddr(4, { address: '7.0.113.12', port: 41641 })!;
  assert.deepEqual([s.length, s.readUInt16LE(0), s.readUInt16BE(2), [...s.subarray(4, 8)].join('.')], [16, 2, 41641, '7.0.113.12']);
  assert.equal(sockaddr(6, { address: '::1', port: 9 })!.length, 28);
  assert.equal(sockaddr(4, { address: '::1', port: 9 }), null);
  assert.equal(sockaddr(4, { address: 'not-an-ip', port: 9 }), null);
  assert.equal(sockaddr(4, { address: '127.0.0.1', port: 0 }), null);
});

test('a datagram with its own TTL reaches a loopback socket, and the bind keeps sending normally after it', {
  skip: process.platform !== 'linux',
}, async () => {
  const rx = dgram.createSocket('udp4');
  await new Promise<void>((r) => rx.bind(0, '127.0.0.1', () => r()));
  const got: string[] = [];
  rx.on('message', (m) => got.push(m.toString()));
  const bind = new UdpBind();
  await bind.open(0, () => {});
  try {
    const to: Endpoint = { address: '127.0.0.1', port: rx.address().port };
    assert.equal(bind.sendTtl(Buffer.from('opener'), to, 1), true, 'sendmsg with IP_TTL 1 (loopback is zero hops)');
    assert.equal(bind.sendTtl(Buffer.from('bad'), { address: '::1', port: to.port }, 1) || true, true, 'no IPv6 socket or a v6 send: never throws');
    assert.equal(bind.sendTtl(Buffer.alloc(600), to, 1), false, 'too big for the TTL path');
    bind.send(Buffer.from('data'), to);
    const deadline = Date.now() + 5000;
    while (got.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(got.sort(), ['data', 'opener']);
  } finally {
    await bind.close();
    rx.close();
  }
});
