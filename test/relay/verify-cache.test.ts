// How long the relay's verify cache lets a node in after control deleted it:
// a cached `known` is reused for VERIFY_CACHE_MS after the lookup that made it
// (no new lookup), and the first check after that asks control again and gets
// `unknown`. The verifier's clock is injected and stepped by hand; the lookups
// themselves go to a stand-in control server over real HTTPS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generatePrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';
import { ClientVerifier, VERIFY_CACHE_MS } from '../../src/relay/verify.js';
import { fakeVerify } from './harness.js';

test(`a node deleted at control is still let in from the cache for VERIFY_CACHE_MS (${VERIFY_CACHE_MS} ms) after the lookup, then refused`, async () => {
  const ctl = await fakeVerify();
  let now = Date.now();
  const v = new ClientVerifier({ url: ctl.url, caFile: ctl.caFile, now: () => now });
  try {
    const key = publicKeyOf(generatePrivateKey());
    ctl.allow(key);
    assert.equal(await v.check(key), 'known');
    assert.equal(ctl.st.requests, 1);
    ctl.forget(key); // deleted at control
    now += VERIFY_CACHE_MS - 1;
    assert.equal(await v.check(key), 'known', 'inside the window the cached answer lets the deleted node in');
    assert.equal(ctl.st.requests, 1, 'from the cache, without asking control');
    assert.equal(v.stats.cacheHits, 1);
    now += 1;
    assert.equal(await v.check(key), 'unknown', 'at VERIFY_CACHE_MS the cache entry is stale: control is asked and refuses');
    assert.equal(ctl.st.requests, 2);
    // a stranger's `unknown` is cached the same way: control is not asked again inside the window
    now += VERIFY_CACHE_MS - 1;
    assert.equal(await v.check(key), 'unknown');
    assert.equal(ctl.st.requests, 2);
  } finally {
    v.stop();
    await ctl.close();
  }
});

test('the cache window is an option: a relay given a short one lets a deleted node in only that long', async () => {
  const ctl = await fakeVerify();
  const cacheMs = 5_000;
  let now = Date.now();
  const v = new ClientVerifier({ url: ctl.url, caFile: ctl.caFile, cacheMs, now: () => now });
  try {
    const key = publicKeyOf(generatePrivateKey());
    ctl.allow(key);
    assert.equal(await v.check(key), 'known');
    ctl.forget(key);
    now += cacheMs - 1;
    assert.equal(await v.check(key), 'known');
    now += 1;
    assert.equal(await v.check(key), 'unknown');
  } finally {
    v.stop();
    await ctl.close();
  }
});
