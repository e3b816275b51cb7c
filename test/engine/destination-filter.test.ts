// The destination check on a real pair of devices in memory: a peer whose
// source WireGuard accepts sends to the node itself, to a route the node is
// primary for, and to a network the node was never approved for; only the last
// is dropped (and counted) before it reaches the TUN. Plus IPv6, the exit-node
// widening and packets that are not IP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { destinationFilter } from '../../src/engine/device/destination-filter.js';
import { parsePrefix } from '../../src/util/netaddr.js';
import { ipv4Packet } from '../helpers/memnet.js';
import { devicePair } from '../helpers/device-pair.js';

function ipv6Packet(dst: string): Buffer {
  const p = Buffer.alloc(48);
  p[0] = 0x60;
  p.writeUInt16BE(8, 4);
  p[6] = 17;
  p[7] = 64;
  const hex = (a: string): Buffer => {
    const [head, tail = ''] = a.split('::');
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
    return Buffer.from(groups.map((g) => g.padStart(4, '0')).join(''), 'hex');
  };
  hex('fd7a:115c:a1e0::1').copy(p, 8);
  hex(dst).copy(p, 24);
  return p;
}

test('a forwarding node drops decrypted packets for destinations it does not serve, and counts them', async () => {
  // a routes everything to b (a dishonest or misconfigured client); b accepts a's own address as source only
  const { net, a, b } = await devicePair({ address: '0.0.0.0', bits: 0 }, { address: '100.64.0.1', bits: 32 });
  try {
    const stats = { droppedDestination: 0 };
    b.dev.setPacketFilter({ filterIn: destinationFilter({ prefixes: ['100.64.0.2/32', '192.168.77.0/24'].map(parsePrefix) }, stats) });
    const dsts = ['100.64.0.2', '192.168.77.5', '192.168.99.5', '100.64.0.3', '192.168.78.1'];
    a.dev.sendPackets(dsts.map((d) => ipv4Packet('100.64.0.1', d, 32)));
    for (let i = 0; i < 6; i++) net.pump();
    const got = b.received.map((p) => [...p.subarray(16, 20)].join('.'));
    assert.deepEqual(got, ['100.64.0.2', '192.168.77.5'], 'only the node itself and its approved route');
    assert.equal(stats.droppedDestination, 3);
    assert.equal(b.dev.stats.dropped.filteredIn, 3);
  } finally {
    await a.dev.close();
    await b.dev.close();
  }
});

test('destination check: IPv6 by prefix, an exit node takes any destination of its families, non-IP is dropped', () => {
  const stats = { droppedDestination: 0 };
  const plain = destinationFilter({ prefixes: ['fd7a:115c:a1e0::2/128', 'fd00:77::/64'].map(parsePrefix) }, stats);
  assert.equal(plain(ipv6Packet('fd7a:115c:a1e0::2')), true);
  assert.equal(plain(ipv6Packet('fd00:77::9')), true);
  assert.equal(plain(ipv6Packet('fd00:78::9')), false);
  assert.equal(plain(Buffer.from([0x45, 0, 0])), false, 'a truncated header');
  assert.equal(plain(Buffer.alloc(0)), false);
  assert.equal(stats.droppedDestination, 3);
  const exit = destinationFilter({ prefixes: [], anyV4: true }, stats);
  assert.equal(exit(ipv4Packet('100.64.0.1', '8.8.8.8', 8)), true);
  assert.equal(exit(ipv6Packet('2001:db8::1')), false, 'IPv4 exit only: IPv6 is not taken');
  const exit6 = destinationFilter({ prefixes: [], anyV4: true, anyV6: true }, stats);
  assert.equal(exit6(ipv6Packet('2001:db8::1')), true);
});
