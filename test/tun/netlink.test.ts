// The rtnetlink codec: the exact bytes of the requests (what `ip addr replace`
// and `ip route add` send), the ack parser on real ack layouts, and on
// truncated and random buffers, which must throw NetlinkFormatError and never
// read out of bounds. Plus the socket's bounded wait, on a real netlink socket
// that touches no configuration.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endianness } from 'node:os';
import { parsePrefix } from '../../src/util/netaddr.js';
import { hostBitsSet, NetlinkFormatError, NetlinkSystemError, newAddressMessage, newRouteMessage, parseAcks, RouteSocket } from '../../src/tun/netlink.js';

const le = endianness() === 'LE';
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const skipBE = le ? false : 'byte layouts below are written for a little-endian host';

test('RTM_NEWADDR: replace, create, ack; ifaddrmsg (IPv6 without DAD) and IFA_LOCAL/IFA_ADDRESS for IPv4 and IPv6', { skip: skipBE }, () => {
  assert.deepEqual(
    newAddressMessage(1, 7, parsePrefix('10.90.0.1/32')),
    hex(`28000000 1400 0505 01000000 00000000
         02 20 00 00 07000000
         0800 0200 0a5a0001
         0800 0100 0a5a0001`),
  );
  assert.deepEqual(
    newAddressMessage(0x01020304, 0x100, parsePrefix('fd00:90::1/128')),
    hex(`40000000 1400 0505 04030201 00000000
         0a 80 02 00 00010000
         1400 0200 fd000090000000000000000000000001
         1400 0100 fd000090000000000000000000000001`),
  );
  // an address keeps its host bits (10.80.0.1/24 is an address on a /24)
  assert.deepEqual(newAddressMessage(1, 7, parsePrefix('10.80.0.1/24')).subarray(16, 18), hex('02 18'));
});

test('RTM_NEWROUTE: create, exclusive, ack; table main, proto boot, unicast, scope link (v4) / universe (v6), RTA_DST and RTA_OIF', { skip: skipBE }, () => {
  assert.deepEqual(
    newRouteMessage(2, 7, parsePrefix('10.90.0.0/16')),
    hex(`2c000000 1800 0506 02000000 00000000
         02 10 00 00 fe 03 fd 01 00000000
         0800 0100 0a5a0000
         0800 0400 07000000`),
  );
  assert.deepEqual(
    newRouteMessage(3, 7, parsePrefix('fd00:90::/48')),
    hex(`38000000 1800 0506 03000000 00000000
         0a 30 00 00 fe 03 00 01 00000000
         1400 0100 fd000090000000000000000000000000
         0800 0400 07000000`),
  );
});

test('hostBitsSet: a route must name a network', () => {
  assert.equal(hostBitsSet(parsePrefix('10.90.0.0/16')), false);
  assert.equal(hostBitsSet(parsePrefix('10.90.0.1/16')), true);
  assert.equal(hostBitsSet(parsePrefix('10.90.0.1/32')), false);
  assert.equal(hostBitsSet(parsePrefix('0.0.0.0/0')), false);
  assert.equal(hostBitsSet(parsePrefix('fd00:90::/48')), false);
  assert.equal(hostBitsSet(parsePrefix('fd00:90:0:1::/48')), true);
  assert.equal(hostBitsSet(parsePrefix('fd00:91::/15')), true);
});

// acks as the kernel writes them (netlink_ack): header, int error, the request's header (all of the request when
// uncapped and failed), then extended-ack attributes when NLM_F_ACK_TLVS (0x200) is set; NLM_F_CAPPED is 0x100
const okCapped = hex(`24000000 0200 0001 05000000 d2040000  00000000  2c000000 1800 0506 05000000 00000000`);
const msg = Buffer.concat([Buffer.from('Route already exists\0'), Buffer.alloc(3)]); // 21 bytes, padded to 24
const eexistTlv = hex(`40000000 0200 0003 06000000 d2040000  efffffff  2c000000 1800 0506 06000000 00000000
                        1900 0100 ${msg.toString('hex')}`);
const request = newRouteMessage(7, 7, parsePrefix('10.90.0.0/16'));
const uncapped = Buffer.concat([
  hex(`50000000 0200 0002 07000000 d2040000  ecffffff`), // 16 + 4 + 44 + 16 = 80; -20 ENOTDIR
  request,
  hex(`0c00 0100 62616400 0800 0200 1c000000`), // msg "bad\0", then NLMSGERR_ATTR_OFFS
]);

test('parseAcks: success, an error with the kernel message, an uncapped ack echoing the request, several in one datagram', { skip: skipBE }, () => {
  assert.deepEqual(parseAcks(okCapped), [{ seq: 5, errno: 0, message: null }]);
  assert.deepEqual(parseAcks(eexistTlv), [{ seq: 6, errno: 17, message: 'Route already exists' }]);
  assert.deepEqual(parseAcks(uncapped), [{ seq: 7, errno: 20, message: 'bad' }]);
  assert.deepEqual(
    parseAcks(Buffer.concat([okCapped, eexistTlv])).map((a) => a.seq),
    [5, 6],
  );
  // a message of another type is skipped
  const other = hex(`14000000 1000 0000 09000000 00000000 01020304`);
  assert.deepEqual(
    parseAcks(Buffer.concat([other, okCapped])).map((a) => a.seq),
    [5],
  );
  // control characters in the kernel's words cannot reach a terminal or split the one-line error
  const nasty = Buffer.from(eexistTlv);
  nasty.write('\n\x1b[2J', 40, 'latin1');
  assert.doesNotMatch(parseAcks(nasty)[0]!.message!, /[\n\x1b]/);
});

test('parseAcks: every truncation of a valid ack, and bad lengths, throw NetlinkFormatError', { skip: skipBE }, () => {
  for (const ack of [okCapped, eexistTlv, uncapped]) {
    for (let n = 0; n < ack.length; n++) assert.throws(() => parseAcks(ack.subarray(0, n)), NetlinkFormatError, `${ack.length}-byte ack cut to ${n}`);
  }
  const zeroLen = Buffer.from(okCapped);
  zeroLen.writeUInt32LE(0, 0); // would loop forever if taken as a length
  assert.throws(() => parseAcks(zeroLen), NetlinkFormatError);
  const huge = Buffer.from(okCapped);
  huge.writeUInt32LE(0xffffffff, 0);
  assert.throws(() => parseAcks(huge), NetlinkFormatError);
  const positive = Buffer.from(okCapped);
  positive.writeInt32LE(5, 16);
  assert.throws(() => parseAcks(positive), /positive error/);
  const badAttr = Buffer.from(eexistTlv);
  badAttr.writeUInt16LE(200, 36); // attribute longer than the message
  assert.throws(() => parseAcks(badAttr), /attribute length 200/);
  const badEcho = Buffer.from(uncapped);
  badEcho.writeUInt32LE(4000, 20); // echoed request longer than the ack
  assert.throws(() => parseAcks(badEcho), /does not fit/);
});

test('parseAcks: random and mutated buffers return or throw NetlinkFormatError, nothing else', () => {
  let seed = 0x9e3779b9;
  const rand = (): number => ((seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0), seed);
  const bases = [okCapped, eexistTlv, uncapped, Buffer.alloc(64)];
  for (let i = 0; i < 20_000; i++) {
    const base = bases[i % bases.length]!;
    const buf = i % 2 ? Buffer.from(base) : Buffer.from(Array.from({ length: rand() % 96 }, () => rand() & 0xff));
    for (let k = rand() % 4; k >= 0 && buf.length; k--) buf[rand() % buf.length] = rand() & 0xff;
    try {
      parseAcks(buf);
    } catch (err) {
      assert.ok(err instanceof NetlinkFormatError, `buffer ${buf.toString('hex')}: ${(err as Error).stack}`);
    }
  }
});

test('RouteSocket: waiting for an ack that never comes ends with a named error at the deadline, without blocking the event loop', async () => {
  const sock = RouteSocket.open({ ackTimeoutMs: 200 });
  try {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const err = await sock.receiveAck(sock.nextSeq()).then(
      () => null,
      (e: unknown) => e,
    );
    clearInterval(timer);
    assert.ok(err instanceof NetlinkSystemError, String(err));
    assert.equal(err.message, 'no answer from the kernel within 200 ms');
    assert.ok(ticks > 0, 'timers ran while waiting');
  } finally {
    sock.close();
  }
  await assert.rejects(sock.receiveAck(1), /socket is closed/);
});
