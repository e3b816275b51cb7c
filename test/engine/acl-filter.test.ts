// The access policy's stateful filter (engine/device/acl-filter.ts) on real IP
// packets: what a rule accepts, what only passes as a reply to a flow this node
// opened, timeouts on the fake clock, the table bound, a policy swap cutting a
// flow a rule had let in, drop counts by reason, and random bytes that never
// throw. One test runs through a pair of devices in memory, composed with the
// destination check, to show the seam carries it both ways.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { AclFilter, CLOCK_TICK_MS, ICMP_TIMEOUT_MS, TCP_OPENING_TIMEOUT_MS, UDP_TIMEOUT_MS } from '../../src/engine/device/acl-filter.js';
import { destinationFilter } from '../../src/engine/device/destination-filter.js';
import { ipToBytes } from '../../src/engine/device/ippacket.js';
import { FakeClock } from '../../src/engine/clock.js';
import type { FilterRule } from '../../src/netmap/types.js';
import { parsePrefix } from '../../src/util/netaddr.js';
import { devicePair } from '../helpers/device-pair.js';

const LAPTOP = '100.64.0.1';
const NAS = '100.64.0.2';
const SERVER = '100.64.0.3';
const SYN = 0x02;
const ACK = 0x10;
const RST = 0x04;

interface PacketOpts {
  src: string;
  dst: string;
  proto: number;
  sport?: number;
  dport?: number;
  flags?: number;
  icmpType?: number;
  icmpId?: number;
  /** IPv4 fragment: offset in 8-byte units and the more-fragments bit */
  fragOffset?: number;
  moreFragments?: boolean;
  ipId?: number;
  /** bytes after the L4 header's first 20 (an ICMP error's quoted packet goes here) */
  payload?: Buffer;
}

/** An IPv4 or IPv6 packet (by the address family) with a TCP, UDP or ICMP header. */
function packet(o: PacketOpts): Buffer {
  const src = ipToBytes(o.src);
  const v6 = src.length === 16;
  const l4len = o.proto === 6 ? 20 : 8;
  const payload = o.payload ?? Buffer.alloc(4);
  const ipLen = v6 ? 40 : 20;
  const p = Buffer.alloc(ipLen + l4len + payload.length);
  if (v6) {
    p[0] = 0x60;
    p.writeUInt16BE(l4len + payload.length, 4);
    p[6] = o.proto;
    p[7] = 64;
    src.copy(p, 8);
    ipToBytes(o.dst).copy(p, 24);
  } else {
    p[0] = 0x45;
    p.writeUInt16BE(p.length, 2);
    p.writeUInt16BE(o.ipId ?? 0, 4);
    p.writeUInt16BE(((o.moreFragments ? 1 : 0) << 13) | (o.fragOffset ?? 0), 6);
    p[8] = 64;
    p[9] = o.proto;
    src.copy(p, 12);
    ipToBytes(o.dst).copy(p, 16);
  }
  const l4 = ipLen;
  if (o.proto === 6 || o.proto === 17) {
    p.writeUInt16BE(o.sport ?? 40000, l4);
    p.writeUInt16BE(o.dport ?? 22, l4 + 2);
    if (o.proto === 6) {
      p[l4 + 12] = 0x50;
      p[l4 + 13] = o.flags ?? ACK;
    }
  } else {
    p[l4] = o.icmpType ?? 8;
    p.writeUInt16BE(o.icmpId ?? 7, l4 + 4);
  }
  payload.copy(p, l4 + l4len);
  return p;
}

const tcp = (src: string, dst: string, sport: number, dport: number, flags: number) => packet({ src, dst, proto: 6, sport, dport, flags });
const udp = (src: string, dst: string, sport: number, dport: number) => packet({ src, dst, proto: 17, sport, dport });

/** alice's laptop may reach the NAS on 22 (TCP) and 53 (UDP) and ping it; nothing may reach the laptop. */
const NAS_RULES: FilterRule[] = [
  { srcIps: [`${LAPTOP}/32`], dstPorts: [{ ip: `${NAS}/32`, first: 22, last: 22 }], protocols: [6] },
  { srcIps: [`${LAPTOP}/32`], dstPorts: [{ ip: `${NAS}/32`, first: 53, last: 53 }], protocols: [17] },
  { srcIps: [`${LAPTOP}/32`], dstPorts: [{ ip: `${NAS}/32`, first: 0, last: 65535 }], protocols: [1] },
];

function filterOn(rules: FilterRule[], maxFlows?: number) {
  const clock = new FakeClock();
  const f = new AclFilter(rules, { clock, maxFlows });
  return { clock, f };
}

test('acl filter: a rule accepts its source, destination port and protocol; another port, source or protocol is dropped as no-rule', () => {
  const { f } = filterOn(NAS_RULES);
  assert.equal(f.inbound(tcp(LAPTOP, NAS, 40000, 22, SYN)), true, 'laptop → nas:22');
  assert.equal(f.inbound(tcp(LAPTOP, NAS, 40001, 5432, SYN)), false, 'laptop → nas:5432');
  assert.equal(f.inbound(tcp(SERVER, NAS, 40000, 22, SYN)), false, 'server → nas:22');
  assert.equal(f.inbound(udp(LAPTOP, NAS, 5000, 22)), false, 'UDP to a TCP-only port');
  assert.equal(f.inbound(udp(LAPTOP, NAS, 5000, 53)), true);
  assert.equal(f.inbound(packet({ src: LAPTOP, dst: NAS, proto: 1, icmpType: 8 })), true, 'ICMP by rule, ports do not apply');
  assert.equal(f.inbound(packet({ src: SERVER, dst: NAS, proto: 1, icmpType: 8 })), false);
  assert.equal(f.inbound(packet({ src: LAPTOP, dst: NAS, proto: 47 })), false, 'GRE: no rule names it');
  assert.deepEqual(
    { ...f.stats(), flows: 0 },
    {
      droppedNoRule: 5,
      droppedNotAReply: 0,
      droppedFragment: 0,
      droppedMalformed: 0,
      flowsRevoked: 0,
      flowsEvicted: 0,
      flows: 0,
      maxFlows: 65536,
      rules: 3,
    },
  );
});

test('acl filter: a tagged server answers connections but cannot open one; replies to own flows pass', () => {
  // the laptop's filter: nothing may open a flow to it
  const { f } = filterOn([]);
  assert.equal(f.inbound(tcp(SERVER, LAPTOP, 443, 40000, SYN)), false, 'the server cannot open a connection');
  assert.equal(f.inbound(tcp(SERVER, LAPTOP, 443, 40000, SYN | ACK)), false, 'nor fake an answer');
  assert.equal(f.outbound(tcp(LAPTOP, SERVER, 40000, 443, SYN)), true);
  assert.equal(f.inbound(tcp(SERVER, LAPTOP, 443, 40000, SYN | ACK)), true, 'the answer to the laptop’s own connection');
  assert.equal(f.inbound(tcp(SERVER, LAPTOP, 443, 40000, ACK)), true);
  assert.equal(f.inbound(tcp(SERVER, LAPTOP, 443, 40001, ACK)), false, 'another port pair is not that flow');
  // the server's filter: the laptop may reach 443; the server's answers go out and the laptop's next segments come in
  const srv = filterOn([{ srcIps: ['100.64.0.0/10'], dstPorts: [{ ip: `${SERVER}/32`, first: 443, last: 443 }], protocols: [] }]).f;
  assert.equal(srv.inbound(tcp(LAPTOP, SERVER, 40000, 443, SYN)), true);
  assert.equal(srv.outbound(tcp(SERVER, LAPTOP, 443, 40000, SYN | ACK)), true);
  assert.equal(srv.inbound(tcp(LAPTOP, SERVER, 40000, 443, ACK)), true);
  assert.equal(f.stats().droppedNoRule, 1);
  assert.equal(f.stats().droppedNotAReply, 2);
});

test('acl filter: UDP and ICMP echo flows, and their timeouts on the clock', () => {
  const { clock, f } = filterOn([]);
  f.outbound(udp(LAPTOP, NAS, 5353, 53));
  assert.equal(f.inbound(udp(NAS, LAPTOP, 53, 5353)), true, 'the answer to a UDP query');
  assert.equal(f.inbound(udp(NAS, LAPTOP, 53, 5354)), false);
  f.outbound(packet({ src: LAPTOP, dst: NAS, proto: 1, icmpType: 8, icmpId: 99 }));
  assert.equal(f.inbound(packet({ src: NAS, dst: LAPTOP, proto: 1, icmpType: 0, icmpId: 99 })), true, 'echo reply');
  assert.equal(f.inbound(packet({ src: NAS, dst: LAPTOP, proto: 1, icmpType: 0, icmpId: 98 })), false, 'another echo id');
  assert.equal(f.inbound(packet({ src: NAS, dst: LAPTOP, proto: 1, icmpType: 8, icmpId: 5 })), false, 'an echo request by no rule');
  clock.advance(ICMP_TIMEOUT_MS + 1);
  assert.equal(f.inbound(packet({ src: NAS, dst: LAPTOP, proto: 1, icmpType: 0, icmpId: 99 })), false, 'the echo flow expired');
  assert.equal(f.inbound(udp(NAS, LAPTOP, 53, 5353)), true, 'UDP lives longer, and each packet extends it');
  clock.advance(UDP_TIMEOUT_MS - 1000);
  assert.equal(f.inbound(udp(NAS, LAPTOP, 53, 5353)), true);
  clock.advance(UDP_TIMEOUT_MS + 1);
  assert.equal(f.inbound(udp(NAS, LAPTOP, 53, 5353)), false, 'the UDP flow expired');
  // a TCP connection not answered expires sooner than an established one
  f.outbound(tcp(LAPTOP, NAS, 40000, 22, SYN));
  clock.advance(TCP_OPENING_TIMEOUT_MS + 1);
  assert.equal(f.inbound(tcp(NAS, LAPTOP, 22, 40000, SYN | ACK)), false);
  f.outbound(tcp(LAPTOP, NAS, 40002, 22, SYN));
  assert.equal(f.inbound(tcp(NAS, LAPTOP, 22, 40002, SYN | ACK)), true);
  clock.advance(TCP_OPENING_TIMEOUT_MS * 10);
  assert.equal(f.inbound(tcp(NAS, LAPTOP, 22, 40002, ACK)), true, 'established: 2 h');
  assert.equal(f.stats().flows, 1, 'expired flows were freed');
});

test('acl filter: ICMP errors pass for a flow of this node, fragments follow their first fragment, IPv6 too', () => {
  const { f } = filterOn([]);
  const sent = udp(LAPTOP, NAS, 5353, 53);
  f.outbound(sent);
  const unreachable = (quoted: Buffer) => packet({ src: NAS, dst: LAPTOP, proto: 1, icmpType: 3, icmpId: 0, payload: quoted });
  // an ICMP header is 8 bytes; the builder's payload starts after them
  assert.equal(f.inbound(unreachable(sent.subarray(0, 28))), true, 'port unreachable for the laptop’s query');
  assert.equal(f.inbound(unreachable(udp(LAPTOP, NAS, 5354, 53).subarray(0, 28))), false, 'for no flow');
  assert.equal(f.inbound(unreachable(Buffer.alloc(3))), false, 'quoting nothing');
  // a fragmented answer: later fragments pass after the first one
  const first = packet({ src: NAS, dst: LAPTOP, proto: 17, sport: 53, dport: 5353, moreFragments: true, ipId: 0x1234 });
  const later = packet({ src: NAS, dst: LAPTOP, proto: 17, fragOffset: 185, ipId: 0x1234 });
  const stray = packet({ src: NAS, dst: LAPTOP, proto: 17, fragOffset: 185, ipId: 0x4321 });
  assert.equal(f.inbound(later), false, 'a later fragment before its first');
  assert.equal(f.inbound(first), true);
  assert.equal(f.inbound(later), true);
  assert.equal(f.inbound(stray), false, 'a later fragment of a datagram whose first never passed');
  // many fragmented datagrams do not push the flows out
  const flowsBefore = f.stats().flows;
  for (let id = 0; id < 70_000; id++) f.inbound(packet({ src: NAS, dst: LAPTOP, proto: 17, sport: 53, dport: 5353, moreFragments: true, ipId: id & 0xffff }));
  assert.equal(f.stats().flows, flowsBefore);
  assert.equal(f.stats().flowsEvicted, 0);
  assert.equal(f.inbound(udp(NAS, LAPTOP, 53, 5353)), true, 'the UDP flow is still there');
  // IPv6
  const a6 = 'fd7a:115c:a1e0::1';
  const b6 = 'fd7a:115c:a1e0::2';
  const g = filterOn([{ srcIps: [`${a6}/128`], dstPorts: [{ ip: 'fd7a:115c:a1e0::/48', first: 22, last: 22 }], protocols: [] }]).f;
  assert.equal(g.inbound(tcp(a6, b6, 40000, 22, SYN)), true);
  assert.equal(g.inbound(tcp(a6, b6, 40000, 23, SYN)), false);
  assert.equal(g.inbound(packet({ src: a6, dst: b6, proto: 58, icmpType: 128 })), true, 'ICMPv6 is among the default protocols');
  assert.equal(g.inbound(packet({ src: b6, dst: a6, proto: 58, icmpType: 129, icmpId: 3 })), false);
  g.outbound(packet({ src: a6, dst: b6, proto: 58, icmpType: 128, icmpId: 3 }));
  assert.equal(g.inbound(packet({ src: b6, dst: a6, proto: 58, icmpType: 129, icmpId: 3 })), true);
  assert.equal(f.stats().droppedFragment, 2);
  assert.equal(f.stats().droppedNotAReply, 2);
  assert.equal(f.stats().droppedMalformed, 0);
});

test('acl filter: the flow table holds at most maxFlows, dropping the flow idle the longest', () => {
  const { f } = filterOn([], 4);
  for (let port = 1000; port < 1006; port++) f.outbound(udp(LAPTOP, NAS, port, 53));
  f.outbound(udp(LAPTOP, NAS, 1002, 53)); // 1002 used again: now the newest
  f.outbound(udp(LAPTOP, NAS, 1006, 53)); // evicts 1003, the oldest
  const alive = [1000, 1001, 1002, 1003, 1004, 1005, 1006].filter((port) => f.inbound(udp(NAS, LAPTOP, 53, port)));
  assert.deepEqual(alive, [1002, 1004, 1005, 1006]);
  assert.equal(f.stats().flows, 4);
  assert.equal(f.stats().flowsEvicted, 3);
});

test('acl filter: clearFlows forgets every flow and keeps the table: a full table fills again without evicting', () => {
  const { f } = filterOn([], 4);
  for (let round = 0; round < 3; round++) {
    for (let port = 1000; port < 1004; port++) f.outbound(udp(LAPTOP, NAS, port, 53));
    assert.equal(f.stats().flows, 4);
    f.clearFlows();
    assert.equal(f.stats().flows, 0);
    assert.equal(f.inbound(udp(NAS, LAPTOP, 53, 1000)), false, 'a reply to a forgotten flow is not let in');
  }
  assert.equal(f.stats().flowsEvicted, 0, 'cleared slots are free again');
  assert.equal(f.stats().maxFlows, 4);
});

test('acl filter: a new rule set cuts a flow it no longer allows at once, and keeps the flows this node opened', () => {
  const { f } = filterOn(NAS_RULES);
  assert.equal(f.inbound(tcp(LAPTOP, NAS, 40000, 22, SYN)), true);
  f.outbound(tcp(NAS, LAPTOP, 22, 40000, SYN | ACK));
  assert.equal(f.inbound(tcp(LAPTOP, NAS, 40000, 22, ACK)), true);
  f.outbound(tcp(NAS, SERVER, 50000, 443, SYN)); // the NAS's own connection to the server
  f.setRules([NAS_RULES[1]!]); // SSH is no longer allowed
  assert.equal(f.inbound(tcp(LAPTOP, NAS, 40000, 22, ACK)), false, 'the SSH session is cut');
  assert.equal(f.outbound(tcp(NAS, LAPTOP, 22, 40000, ACK)), false, 'the NAS’s side of the cut session carries nothing to the laptop...');
  assert.equal(f.inbound(tcp(LAPTOP, NAS, 40000, 22, ACK)), false, '...and does not make the flow the NAS’s own');
  assert.equal(f.outbound(tcp(NAS, LAPTOP, 22, 40000, RST | ACK)), true, 'a RST (no data) ends it at the laptop');
  assert.equal(f.inbound(tcp(LAPTOP, NAS, 40001, 22, SYN)), false, 'no new sessions');
  assert.equal(f.inbound(tcp(SERVER, NAS, 443, 50000, SYN | ACK)), true, 'the NAS’s own connection stays');
  assert.equal(f.stats().flowsRevoked, 1);
  f.setRules(NAS_RULES);
  assert.equal(f.inbound(tcp(LAPTOP, NAS, 40001, 22, SYN)), true, 'allowed again');
  assert.equal(f.inbound(tcp(LAPTOP, NAS, 40000, 22, ACK)), true, 'and the cut session with it');
  assert.equal(f.stats().flowsRevoked, 1);
});

test('acl filter: a cut UDP flow stops both ways: the node’s own stream to the peer no longer goes out', () => {
  const { f } = filterOn(NAS_RULES);
  assert.equal(f.inbound(udp(LAPTOP, NAS, 5353, 53)), true, 'the laptop asks for a stream on UDP 53');
  assert.equal(f.outbound(udp(NAS, LAPTOP, 53, 5353)), true, 'the NAS streams back');
  f.setRules([NAS_RULES[0]!]); // UDP 53 is no longer allowed
  assert.equal(f.stats().flowsRevoked, 1);
  const droppedBefore = f.stats().droppedNoRule;
  assert.equal(f.outbound(udp(NAS, LAPTOP, 53, 5353)), false, 'the stream stops at the NAS');
  assert.equal(f.inbound(udp(LAPTOP, NAS, 5353, 53)), false, 'and the laptop’s datagrams stop too');
  assert.equal(f.stats().droppedNoRule, droppedBefore + 2);
  assert.equal(f.outbound(udp(NAS, LAPTOP, 53, 5354)), true, 'another flow of the NAS’s own is its own');
});

test('acl filter: malformed and random packets are dropped and counted, never thrown on', () => {
  const { f } = filterOn([
    {
      srcIps: ['0.0.0.0/0', '::/0'],
      dstPorts: [
        { ip: '0.0.0.0/0', first: 0, last: 65535 },
        { ip: '::/0', first: 0, last: 65535 },
      ],
      protocols: [],
    },
  ]);
  assert.equal(f.inbound(Buffer.alloc(0)), false);
  assert.equal(f.inbound(Buffer.from([0x45, 0, 0])), false);
  const short = tcp(LAPTOP, NAS, 1, 22, SYN).subarray(0, 30);
  short.writeUInt16BE(30, 2);
  assert.equal(f.inbound(short), false, 'a TCP header cut short');
  assert.equal(f.stats().droppedMalformed, 3);
  for (let i = 0; i < 20000; i++) {
    const p = randomBytes(1 + (i % 120));
    if (i % 2 === 0) p[0] = i % 4 === 0 ? 0x45 : 0x60;
    if (i % 4 === 0 && p.length >= 4) p.writeUInt16BE(p.length, 2);
    if (i % 4 === 2 && p.length >= 40) p.writeUInt16BE(p.length - 40, 4);
    assert.equal(typeof f.inbound(p), 'boolean');
    assert.equal(f.outbound(p), true);
  }
  assert.ok(f.stats().flows <= 65536);
});

test('acl filter on the seam: composed with the destination check, both directions, through real devices', async () => {
  const { net, a, b } = await devicePair({ address: '0.0.0.0', bits: 0 }, { address: LAPTOP, bits: 32 });
  try {
    const destStats = { droppedDestination: 0 };
    const acl = new AclFilter(NAS_RULES, { clock: b.dev.clock });
    b.dev.setPacketFilter({ preFilterIn: destinationFilter({ prefixes: [parsePrefix(`${NAS}/32`)] }, destStats), ...acl.hooks() });
    a.dev.sendPackets([tcp(LAPTOP, NAS, 40000, 22, SYN), tcp(LAPTOP, NAS, 40000, 5432, SYN), tcp(LAPTOP, '100.64.0.9', 40000, 22, SYN)]);
    for (let i = 0; i < 6; i++) net.pump();
    assert.deepEqual(
      b.received.map((p) => p.readUInt16BE(22)),
      [22],
      'only SSH reaches the NAS',
    );
    assert.equal(destStats.droppedDestination, 1, 'a destination not served here stops at the destination check');
    assert.equal(acl.stats().droppedNoRule, 1);
    assert.equal(b.dev.stats.dropped.filteredIn, 2);
    // the NAS's answer goes out through the outbound hook; its own connection's answers come back
    b.dev.sendPackets([tcp(NAS, LAPTOP, 22, 40000, SYN | ACK), udp(NAS, LAPTOP, 6000, 7000)]);
    for (let i = 0; i < 6; i++) net.pump();
    assert.equal(a.received.length, 2);
    a.dev.sendPackets([udp(LAPTOP, NAS, 7000, 6000), udp(LAPTOP, NAS, 7000, 6001)]);
    for (let i = 0; i < 6; i++) net.pump();
    assert.deepEqual(
      b.received.slice(1).map((p) => p.readUInt16BE(22)),
      [6000],
      'the reply to the NAS’s own UDP flow',
    );
    assert.equal(acl.stats().droppedNoRule, 2);
  } finally {
    await a.dev.close();
    await b.dev.close();
  }
});

test('acl filter: RST answers and stray TCP are not-a-reply, a RST opens no flow', () => {
  const { f } = filterOn([]);
  f.outbound(tcp(LAPTOP, NAS, 40000, 22, RST));
  assert.equal(f.inbound(tcp(NAS, LAPTOP, 22, 40000, ACK)), false);
  assert.equal(f.stats().flows, 0);
  assert.equal(f.stats().droppedNotAReply, 1);
});

test('acl filter on a device gateway: a device’s own connections open flows, connections to the device follow the rules', () => {
  const DEVICE = '100.64.0.50';
  const { f } = filterOn([{ srcIps: [`${LAPTOP}/32`], dstPorts: [{ ip: `${DEVICE}/32`, first: 80, last: 80 }], protocols: [6] }]);
  f.setLocalSources([parsePrefix(`${DEVICE}/32`)]);
  assert.equal(f.inbound(tcp(DEVICE, NAS, 40000, 22, SYN)), true, 'the device opens a connection: the NAS’s rules judge it');
  assert.equal(f.inbound(tcp(NAS, DEVICE, 22, 40000, SYN | ACK)), true, 'the answer');
  assert.equal(f.inbound(tcp(NAS, DEVICE, 22, 40001, SYN)), false, 'the NAS cannot open one to the device');
  assert.equal(f.inbound(tcp(LAPTOP, DEVICE, 40000, 80, SYN)), true, 'the laptop may, on 80');
  f.setLocalSources([]);
  assert.equal(f.inbound(tcp(DEVICE, NAS, 40002, 22, SYN)), false, 'no longer the gateway’s device');
});

/** A clock that counts the timers set on it, around the fake one. */
class CountingClock extends FakeClock {
  timersSet = 0;
  override setTimeout(fn: () => void, ms: number): unknown {
    this.timersSet++;
    return super.setTimeout(fn, ms);
  }
}

test('acl filter: under steady traffic a flow expires within CLOCK_TICK_MS of its timeout; a quiet filter sets no timer', () => {
  const clock = new CountingClock();
  const f = new AclFilter([], { clock });
  // two flows opened now and silent from here; a third keeps the filter busy every 10 ms
  f.outbound(udp(LAPTOP, NAS, 5000, 53));
  f.outbound(udp(LAPTOP, NAS, 5001, 53));
  const STEP_MS = 10;
  const until = (end: number): void => {
    while (clock.now() < end) {
      clock.advance(STEP_MS);
      f.outbound(udp(LAPTOP, NAS, 6000, 53));
    }
  };
  until(UDP_TIMEOUT_MS - STEP_MS);
  assert.equal(f.inbound(udp(NAS, LAPTOP, 53, 5000)), true, 'alive just before its timeout');
  until(UDP_TIMEOUT_MS + CLOCK_TICK_MS + STEP_MS);
  assert.equal(f.inbound(udp(NAS, LAPTOP, 53, 5001)), false, 'expired at most CLOCK_TICK_MS after its timeout');
  // quiet: the pending tick ends the ticking; no timer after that until the next packet
  clock.advance(10 * CLOCK_TICK_MS);
  const set = clock.timersSet;
  clock.advance(60_000);
  assert.equal(clock.timersSet, set, 'no timer while no packet comes');
  assert.equal(f.inbound(udp(NAS, LAPTOP, 53, 6000)), true, 'the busy flow, 60 s later');
  assert.equal(clock.timersSet, set + 1, 'the first packet after a quiet spell reads the clock and starts ticking');
});

test('acl filter: IPv6 keys compare every word of both addresses; IPv6 fragments match on all 32 bits of their identification', () => {
  const { f } = filterOn([]);
  const me = 'fd7a:115c:a1e0:ab12:cd34::1';
  f.outbound(udp(me, 'fd7a:115c:a1e0::2', 5000, 53));
  assert.equal(f.inbound(udp('fd7a:115c:a1e0::2', me, 53, 5000)), true);
  assert.equal(f.inbound(udp('fd7a:115c:a1e1::2', me, 53, 5000)), false, 'remote differs in its second word');
  assert.equal(f.inbound(udp('fd7a:115c:a1e0::2', 'fd7a:115c:a1e0:ab12:cd35::1', 53, 5000)), false, 'local differs in its third word');
  assert.equal(f.inbound(udp('fd7a:115c:a1e0::2', 'fd7a:115c:a1e0:ab12:cd34::2', 53, 5000)), false, 'local differs in its last word');
  // a fragment header (next header 44) before UDP: 8 bytes, identification at +4
  const fragment = (id: number, offset: number, more: boolean): Buffer => {
    const p = Buffer.alloc(40 + 8 + 8 + 8);
    p[0] = 0x60;
    p.writeUInt16BE(p.length - 40, 4);
    p[6] = 44;
    p[7] = 64;
    ipToBytes('fd7a:115c:a1e0::2').copy(p, 8);
    ipToBytes(me).copy(p, 24);
    p[40] = 17;
    p.writeUInt16BE((offset << 3) | (more ? 1 : 0), 42);
    p.writeUInt32BE(id, 44);
    p.writeUInt16BE(53, 48);
    p.writeUInt16BE(5000, 50);
    return p;
  };
  assert.equal(f.inbound(fragment(0x8001_1234, 0, true)), true, 'a first fragment of the flow');
  assert.equal(f.inbound(fragment(0x8002_1234, 100, false)), false, 'another datagram: the identification differs in its high half');
  assert.equal(f.inbound(fragment(0x8001_1234, 100, false)), true, 'its own later fragment');
  assert.equal(f.stats().droppedFragment, 1);
});
