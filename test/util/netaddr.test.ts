import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AddressSyntaxError,
  ipBytes,
  parseIp,
  parseIpEndpoint,
  parsePrefix,
  prefixContains,
  prefixesOverlap,
  sameLeadingBits,
} from '../../src/util/netaddr.js';
import { isPrintable, terminalSafe } from '../../src/util/text.js';

test('parseIp accepts one canonical form per address', () => {
  assert.equal(parseIp('100.64.0.1').text, '100.64.0.1');
  assert.equal(parseIp('FD00:0:0::0001').text, 'fd00::1');
  assert.equal(parseIp('::ffff:1.2.3.4').family, 6);
  for (const bad of [
    '100.64.0.1\nnetns exec x sh',
    ' 1.2.3.4',
    '1.2.3.4 ',
    '01.2.3.4',
    '1.2.3',
    'fe80::1%eth0',
    '[::1]',
    '',
    'x',
    42,
    null,
    '1.2.3.4/32',
    'a'.repeat(100),
  ]) {
    assert.throws(() => parseIp(bad), AddressSyntaxError, String(bad));
  }
});

test('parsePrefix checks the bits against the family', () => {
  assert.equal(parsePrefix('100.64.0.0/10').text, '100.64.0.0/10');
  assert.equal(parsePrefix('fd12:3456:789a::/48').bits, 48);
  for (const bad of ['100.64.0.0/33', '::/129', '1.2.3.4/010', '1.2.3.4/', '1.2.3.4', '1.2.3.4/8\nroute add', '1.2.3.4/8 dev lo']) {
    assert.throws(() => parsePrefix(bad), AddressSyntaxError, bad);
  }
});

test('parseIpEndpoint: v4:port and [v6]:port only', () => {
  assert.equal(parseIpEndpoint('1.2.3.4:41641').text, '1.2.3.4:41641');
  assert.equal(parseIpEndpoint('[FD00::1]:5').text, '[fd00::1]:5');
  for (const bad of ['1.2.3.4:0', '1.2.3.4:65536', '1.2.3.4:080', 'fd00::1:5', '[1.2.3.4]:5', 'host:5', '1.2.3.4:5\n']) {
    assert.throws(() => parseIpEndpoint(bad), AddressSyntaxError, bad);
  }
});

test('ipBytes', () => {
  assert.deepEqual([...ipBytes(parseIp('10.1.2.3'))], [10, 1, 2, 3]);
  assert.equal(ipBytes(parseIp('fd00::1')).toString('hex'), 'fd000000000000000000000000000001');
  assert.equal(ipBytes(parseIp('::ffff:1.2.3.4')).toString('hex'), '00000000000000000000ffff01020304');
});

test('terminalSafe removes escape sequences; isPrintable refuses them', () => {
  assert.equal(terminalSafe('linux\u001b[2J\u001b[H'), 'linux\ufffd[2J\ufffd[H');
  assert.equal(terminalSafe('a'.repeat(10), 4), 'aaaa…');
  assert.equal(isPrintable('nas', 63), true);
  assert.equal(isPrintable('n\nas', 63), false);
  assert.equal(isPrintable('', 63), false);
  assert.equal(isPrintable(5, 63), false);
});

test('prefix containment and overlap: whole and partial bytes, both families, never across families', () => {
  const p = (t: string) => parsePrefix(t);
  const a = (t: string) => parseIp(t);
  assert.ok(prefixContains(p('100.64.0.0/10'), a('100.127.255.255')));
  assert.ok(!prefixContains(p('100.64.0.0/10'), a('100.128.0.0')));
  assert.ok(prefixContains(p('fd12:3456:789a::/48'), a('fd12:3456:789a::53')));
  assert.ok(!prefixContains(p('fd12:3456:789a::/48'), a('fd12:3456:789b::1')));
  assert.ok(!prefixContains(p('0.0.0.0/0'), a('::1')), 'families never match');
  assert.ok(prefixContains(p('::/0'), a('::1')));
  assert.ok(prefixesOverlap(p('10.0.0.0/8'), p('10.1.2.0/24')));
  assert.ok(prefixesOverlap(p('10.1.2.0/24'), p('10.0.0.0/8')));
  assert.ok(!prefixesOverlap(p('10.0.0.0/9'), p('10.128.0.0/9')));
  assert.ok(!prefixesOverlap(p('10.0.0.0/8'), p('fd00::/8')));
  assert.ok(sameLeadingBits(Buffer.from([0xab, 0xc0]), Buffer.from([0xab, 0xdf]), 11));
  assert.ok(!sameLeadingBits(Buffer.from([0xab, 0xc0]), Buffer.from([0xab, 0xdf]), 12));
});
