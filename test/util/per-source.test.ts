// Per-source keys (an IPv4 address, an IPv6 /64) and the per-source counter
// the control server and the relay cap their connections with.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PerSourceCounter, sourceKey } from '../../src/util/per-source.js';

test('sourceKey: IPv4 as is (also IPv4-mapped), IPv6 by its /64, anything else apart', () => {
  assert.equal(sourceKey('192.0.2.7'), '192.0.2.7');
  assert.equal(sourceKey('::ffff:192.0.2.7'), '192.0.2.7');
  assert.equal(sourceKey('2001:db8:1:2::1'), sourceKey('2001:db8:1:2:ffff:ffff:ffff:ffff'));
  assert.equal(sourceKey('2001:DB8:1:2::1'), '20010db800010002/64');
  assert.notEqual(sourceKey('2001:db8:1:2::1'), sourceKey('2001:db8:1:3::1'));
  assert.equal(sourceKey(undefined), 'unknown');
  assert.equal(sourceKey('not an address'), 'not an address');
});

test('PerSourceCounter: at most max per source, sources independent, emptied sources forgotten', () => {
  const c = new PerSourceCounter(2);
  assert.ok(c.tryAdd('a'));
  assert.ok(c.tryAdd('a'));
  assert.equal(c.tryAdd('a'), false);
  assert.equal(c.count('a'), 2);
  assert.ok(c.tryAdd('b'));
  assert.equal(c.sources, 2);
  c.remove('a');
  assert.ok(c.tryAdd('a'));
  c.remove('a');
  c.remove('a');
  c.remove('b');
  assert.equal(c.sources, 0);
  assert.equal(c.count('a'), 0);
});
