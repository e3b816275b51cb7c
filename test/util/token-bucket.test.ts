// Token buckets on a stepped clock (no waiting): a burst, then the steady rate;
// refill up to the burst and no further; a clock stepping back adds nothing;
// the keyed table is bounded and forgets the key used least recently.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyedTokenBuckets, TokenBucket } from '../../src/util/token-bucket.js';

test('TokenBucket: starts full, gives its burst, then refuses until the next token is due', () => {
  let now = 5_000;
  const b = new TokenBucket({ perSecond: 4, burst: 3 }, () => now);
  assert.equal(b.msUntilToken(), 0);
  for (let i = 0; i < 3; i++) assert.equal(b.take(), true, `take ${i} of the burst`);
  assert.equal(b.take(), false);
  assert.equal(b.msUntilToken(), 250, 'one token every 250 ms');
  assert.equal(b.msUntilToken(), 250, 'asking takes nothing and moves nothing');
  now += 100;
  assert.equal(b.msUntilToken(), 150);
  assert.equal(b.take(), false, 'a refused take costs nothing');
  now += 150;
  assert.equal(b.msUntilToken(), 0);
  assert.equal(b.take(), true);
  assert.equal(b.take(), false);
});

test('TokenBucket: refills at its rate, up to the burst and no further; a clock stepping back adds nothing', () => {
  let now = 0;
  const b = new TokenBucket({ perSecond: 10, burst: 5 }, () => now);
  for (let i = 0; i < 5; i++) assert.ok(b.take());
  now += 300; // 3 tokens earned
  for (let i = 0; i < 3; i++) assert.ok(b.take(), `refilled token ${i}`);
  assert.equal(b.take(), false);
  now += 3_600_000;
  for (let i = 0; i < 5; i++) assert.ok(b.take(), `after an hour: token ${i} of the burst`);
  assert.equal(b.take(), false, 'an hour of quiet gives the burst, no more');
  now -= 60_000;
  assert.equal(b.take(), false, 'stepping back adds no tokens');
  assert.equal(b.msUntilToken(), 100, '...and takes none away');
  now += 100;
  assert.ok(b.take());
});

test('TokenBucket: fractional rates and the rate limits it refuses', () => {
  let now = 0;
  const b = new TokenBucket({ perSecond: 0.5, burst: 1 }, () => now);
  assert.ok(b.take());
  assert.equal(b.msUntilToken(), 2000);
  now += 1999;
  assert.equal(b.take(), false);
  now += 1;
  assert.ok(b.take());
  assert.throws(() => new TokenBucket({ perSecond: 0, burst: 1 }), RangeError);
  assert.throws(() => new TokenBucket({ perSecond: 1, burst: 0.5 }), RangeError);
  assert.throws(() => new TokenBucket({ perSecond: Number.NaN, burst: 1 }), RangeError);
});

test('KeyedTokenBuckets: a bucket per key, refused takes counted, the wait until the next token per key', () => {
  let now = 1_000_000;
  const k = new KeyedTokenBuckets({ perSecond: 2, burst: 3, maxKeys: 10 }, () => now);
  assert.equal(k.msUntilToken('a'), 0, 'a key not seen yet would start full');
  assert.equal(k.size, 0, 'asking does not add a key');
  for (let i = 0; i < 3; i++) assert.ok(k.take('a'));
  assert.equal(k.take('a'), false);
  assert.equal(k.msUntilToken('a'), 500);
  assert.ok(k.take('b'), 'another key has its own bucket');
  now += 250;
  assert.equal(k.msUntilToken('a'), 250);
  now += 250;
  assert.ok(k.take('a'));
  now += 60_000;
  for (let i = 0; i < 3; i++) assert.ok(k.take('a'), 'refilled up to the burst');
  assert.equal(k.take('a'), false, 'and no further');
  now -= 30_000;
  assert.equal(k.take('a'), false, 'a clock stepping back adds no tokens');
  assert.deepEqual(k.stats(), { keys: 2, refused: 3, evicted: 0 });
});

test('KeyedTokenBuckets: the table stays bounded; the key used least recently is forgotten first and comes back full', () => {
  let now = 0;
  const k = new KeyedTokenBuckets({ perSecond: 0.001, burst: 1, maxKeys: 3 }, () => now);
  for (const key of ['a', 'b', 'c']) assert.ok(k.take(key));
  // a is used again (refused, but used): b is now the least recently used
  now += 1;
  assert.equal(k.take('a'), false);
  assert.ok(k.take('d'), 'a new key starts full');
  assert.deepEqual(k.stats(), { keys: 3, refused: 1, evicted: 1 });
  assert.ok(k.take('b'), 'b was forgotten: it comes back with a full bucket (and c goes)');
  assert.equal(k.take('a'), false, 'a was kept: still empty');
  assert.equal(k.take('d'), false, 'd was kept: still empty');
  assert.ok(k.take('c'), 'c was forgotten next');
  assert.equal(k.size, 3);
  assert.deepEqual(k.stats(), { keys: 3, refused: 3, evicted: 3 });
  // asking for the wait does not make a key recently used: a is still the first to go
  assert.ok(k.msUntilToken('a') > 0);
  assert.ok(k.take('e'));
  assert.ok(k.take('a'), 'a was forgotten, whatever was asked of it');
  assert.equal(k.take('c'), false, 'c was kept');
});

test('KeyedTokenBuckets: many keys through a small table', () => {
  let now = 0;
  const k = new KeyedTokenBuckets({ perSecond: 0.001, burst: 2, maxKeys: 100 }, () => now);
  k.take('busy');
  k.take('busy');
  assert.equal(k.take('busy'), false, 'drained');
  for (let i = 0; i < 10_000; i++) {
    now += 1;
    assert.ok(k.take(`key-${i}`));
    // the busy key keeps being used, so it is never the least recently used: it stays drained
    if (i % 50 === 0) assert.equal(k.take('busy'), false, `busy key forgotten after ${i} others`);
    assert.ok(k.size <= 100);
  }
  assert.equal(k.size, 100);
  assert.equal(k.stats().evicted, 10_001 - 100);
  assert.throws(() => new KeyedTokenBuckets({ perSecond: 1, burst: 1, maxKeys: 0 }), RangeError);
});
