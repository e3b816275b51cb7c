// The packet-filter seam on a real pair of devices in memory: with no hooks
// every packet passes both ways; installed hooks drop what they say, inbound
// after decryption and outbound before encryption, in pre → filter → post order,
// and each drop is counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv4Packet } from '../helpers/memnet.js';
import { devicePair } from '../helpers/device-pair.js';

const pair = () => devicePair();

// the fill byte of the test packets' payload tells the hooks what to do with them
const PASS = 0x11;
const DROP_IN = 0xd1;
const DROP_OUT = 0xd0;
const aToB = (fill: number) => ipv4Packet('10.0.0.1', '10.0.0.2', 64, fill);
const bToA = (fill: number) => ipv4Packet('10.0.0.2', '10.0.0.1', 64, fill);
const fills = (got: Buffer[]) => got.map((p) => p[20]);

test('with no hooks installed every packet passes, both ways', async () => {
  const { net, a, b } = await pair();
  try {
    a.dev.sendPackets([aToB(PASS), aToB(DROP_IN), aToB(DROP_OUT)]);
    for (let i = 0; i < 4; i++) net.pump();
    b.dev.sendPackets([bToA(PASS), bToA(DROP_IN), bToA(DROP_OUT)]);
    b.dev.sendPacket(bToA(DROP_OUT));
    net.pump();
    assert.deepEqual(fills(b.received), [PASS, DROP_IN, DROP_OUT]);
    assert.deepEqual(fills(a.received), [PASS, DROP_IN, DROP_OUT, DROP_OUT]);
    for (const d of [a.dev, b.dev]) assert.deepEqual([d.stats.dropped.filteredIn, d.stats.dropped.filteredOut], [0, 0]);
  } finally {
    await a.dev.close();
    await b.dev.close();
  }
});

test('hooks on a device drop what they say: inbound after decryption, outbound before encryption, in stage order', async () => {
  const { net, a, b } = await pair();
  try {
    // handshake first, with no hooks: the hooks then see data packets only
    a.dev.sendPacket(aToB(PASS));
    for (let i = 0; i < 4; i++) net.pump();
    assert.deepEqual(fills(b.received), [PASS]);

    const calls: string[] = [];
    const stage = (name: string, drop: number) => (pkt: Buffer) => (calls.push(`${name}:${pkt[20]!.toString(16)}`), pkt[20] !== drop);
    b.dev.setPacketFilter({
      preFilterIn: stage('preIn', -1),
      filterIn: stage('in', DROP_IN),
      postFilterIn: stage('postIn', -1),
      filterOut: stage('out', DROP_OUT),
    });

    // inbound at b: the packet was decrypted (the hook sees its plaintext), then dropped before the TUN write
    const sentBefore = a.dev.stats.tx.packets;
    a.dev.sendPackets([aToB(PASS), aToB(DROP_IN), aToB(DROP_OUT)]);
    assert.equal(a.dev.stats.tx.packets - sentBefore, 3, 'a has no hooks: all three were encrypted and sent');
    net.pump();
    assert.deepEqual(fills(b.received), [PASS, PASS, DROP_OUT], 'only the packet the inbound filter refuses is dropped');
    assert.equal(b.dev.stats.dropped.filteredIn, 1);
    assert.deepEqual(
      calls,
      ['preIn:11', 'in:11', 'postIn:11', 'preIn:d1', 'in:d1', 'preIn:d0', 'in:d0', 'postIn:d0'],
      'post runs only on what the filter accepted',
    );

    // outbound at b: dropped before routing and encryption, so nothing leaves for it
    calls.length = 0;
    const bSent = b.dev.stats.tx.packets;
    b.dev.sendPackets([bToA(PASS), bToA(DROP_OUT), bToA(DROP_IN)]);
    b.dev.sendPacket(bToA(DROP_OUT));
    assert.equal(b.dev.stats.tx.packets - bSent, 2, 'the two refused packets were never encrypted');
    net.pump();
    assert.deepEqual(fills(a.received), [PASS, DROP_IN]);
    assert.equal(b.dev.stats.dropped.filteredOut, 2);
    assert.deepEqual(calls, ['out:11', 'out:d0', 'out:d1', 'out:d0'], 'outbound hooks do not run the inbound stages');

    // removed: the default accepts everything again
    b.dev.setPacketFilter(null);
    a.dev.sendPacket(aToB(DROP_IN));
    b.dev.sendPacket(bToA(DROP_OUT));
    net.pump();
    assert.equal(b.received.at(-1)?.[20], DROP_IN);
    assert.equal(a.received.at(-1)?.[20], DROP_OUT);
    assert.deepEqual([b.dev.stats.dropped.filteredIn, b.dev.stats.dropped.filteredOut], [1, 2]);
  } finally {
    await a.dev.close();
    await b.dev.close();
  }
});
