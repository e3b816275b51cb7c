// --verify-clients against a stand-in control server over real HTTPS: a node
// deleted at control loses the relay within the recheck interval; the cache
// stays under its cap; lookups in flight and per second are capped, and a
// lookup that cannot be made is answered `busy` (the client is refused).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generatePrivateKey, publicKeyOf } from '../../src/crypto/x25519.js';
import { ClientVerifier, type Verdict } from '../../src/relay/verify.js';
import { client, fakeVerify, relay, until } from './harness.js';

const newKey = (): Buffer => publicKeyOf(generatePrivateKey());

test('a node deleted at control is disconnected within the recheck interval; a stranger is refused', async () => {
  const ctl = await fakeVerify();
  const R = await relay({ verifyClientsUrl: ctl.url, verifyClientsCa: ctl.caFile, verifyRecheckMs: 300, verify: { cacheMs: 200 } });
  const priv = generatePrivateKey();
  ctl.allow(publicKeyOf(priv));
  const member = client(R.url, { fingerprint: R.r.fingerprint, priv });
  const stranger = client(R.url, { fingerprint: R.r.fingerprint });
  try {
    await until(() => member.c.connected, 3000, 'the member connected');
    await until(() => /not known to the control server/.test(stranger.c.lastError ?? ''), 3000, 'the stranger refused');
    // still a member after several rechecks
    const asked = ctl.st.requests;
    await until(() => ctl.st.requests >= asked + 2, 3000, 'rechecks');
    assert.equal(member.c.connected, true);
    const deletedAt = Date.now();
    ctl.forget(member.pub);
    await until(() => R.r.clients.size === 0 && !member.c.connected, 3000, 'the deleted node disconnected');
    assert.match(member.c.lastError ?? '', /no longer known to the control server/);
    assert.equal(R.r.stats.revoked, 1);
    // within recheck + cache TTL (500 ms) and the lookup: far from the test's 3 s deadline
    assert.ok(Date.now() - deletedAt < 2000, `disconnected after ${Date.now() - deletedAt} ms`);
  } finally {
    member.c.stop();
    stranger.c.stop();
    await R.close();
    await ctl.close();
  }
});

test('rechecks keep a client while control cannot answer', async () => {
  const ctl = await fakeVerify();
  const R = await relay({ verifyClientsUrl: ctl.url, verifyClientsCa: ctl.caFile, verifyRecheckMs: 200, verify: { cacheMs: 100, timeoutMs: 300 } });
  const priv = generatePrivateKey();
  ctl.allow(publicKeyOf(priv));
  const member = client(R.url, { fingerprint: R.r.fingerprint, priv });
  try {
    await until(() => member.c.connected, 3000, 'the member connected');
    ctl.st.hold = true;
    await until(() => (R.r.verifierStats?.errors ?? 0) >= 2, 5000, 'failed rechecks');
    assert.equal(member.c.connected, true);
    assert.equal(R.r.clients.size, 1);
  } finally {
    member.c.stop();
    await R.close();
    await ctl.close();
  }
});

test('the verify cache stays under its cap with many distinct keys', async () => {
  const ctl = await fakeVerify();
  const v = new ClientVerifier({ url: ctl.url, caFile: ctl.caFile, cacheMaxEntries: 50, lookupsPerSec: 100_000, maxInFlight: 32, queueMax: 1000 });
  try {
    const keep = newKey();
    ctl.allow(keep);
    assert.equal(await v.check(keep), 'known');
    for (let round = 0; round < 10; round++) {
      const verdicts = await Promise.all(Array.from({ length: 40 }, () => v.check(newKey())));
      assert.deepEqual(new Set(verdicts), new Set(['unknown']));
      assert.ok(v.cacheSize <= 50, `cache holds ${v.cacheSize}`);
    }
    assert.equal(v.cacheSize, 50);
    assert.ok(v.stats.evicted >= 400 - 50);
    // the oldest answers went first: `keep` is asked about again
    const before = ctl.st.requests;
    assert.equal(await v.check(keep), 'known');
    assert.equal(ctl.st.requests, before + 1);
  } finally {
    v.stop();
    await ctl.close();
  }
});

test('lookups to control: at most maxInFlight at once, a bounded queue, the rest answered busy', async () => {
  const ctl = await fakeVerify();
  ctl.st.hold = true;
  const v = new ClientVerifier({ url: ctl.url, caFile: ctl.caFile, maxInFlight: 3, queueMax: 4, queueWaitMs: 300, timeoutMs: 1500, lookupsPerSec: 1000 });
  try {
    const verdicts: Verdict[] = await Promise.all(Array.from({ length: 20 }, () => v.check(newKey())));
    assert.equal(ctl.st.maxOpen, 3);
    assert.equal(ctl.st.requests, 3);
    assert.equal(verdicts.filter((x) => x === 'error').length, 3);
    assert.equal(verdicts.filter((x) => x === 'busy').length, 17);
  } finally {
    v.stop();
    await ctl.close();
  }
});

test('lookups to control: at most lookupsPerSec per second; waiting lookups are made later', async () => {
  const ctl = await fakeVerify();
  const v = new ClientVerifier({ url: ctl.url, caFile: ctl.caFile, lookupsPerSec: 5, maxInFlight: 100, queueMax: 100, queueWaitMs: 5000 });
  try {
    const keys = Array.from({ length: 15 }, newKey);
    for (const k of keys) ctl.allow(k);
    const verdicts = await Promise.all(keys.map((k) => v.check(k)));
    assert.deepEqual(new Set(verdicts), new Set(['known']));
    const t = ctl.st.times;
    assert.equal(t.length, 15);
    // five at once (one second of burst), then five a second: the last is ~2 s after the first
    const spanMs = t[14]! - t[0]!;
    assert.ok(spanMs >= 1600, `15 lookups within ${spanMs} ms`);
    for (let i = 0; i < t.length; i++) {
      const inWindow = t.filter((x) => x >= t[i]! && x < t[i]! + 1000).length;
      assert.ok(inWindow <= 10, `${inWindow} lookups in one second`);
    }
  } finally {
    v.stop();
    await ctl.close();
  }
});

test('a client refused because control could not be asked retries on the short backoff, and connects once control answers', async () => {
  const ctl = await fakeVerify();
  ctl.st.hold = true; // control restarting: lookups time out, the relay refuses with "try again shortly"
  const R = await relay({ verifyClientsUrl: ctl.url, verifyClientsCa: ctl.caFile, verify: { timeoutMs: 200 } });
  const priv = generatePrivateKey();
  ctl.allow(publicKeyOf(priv));
  const member = client(R.url, { fingerprint: R.r.fingerprint, priv });
  try {
    await until(() => /could not be asked.*try again shortly/.test(member.c.lastError ?? ''), 3000, 'refused while control cannot answer');
    ctl.st.hold = false;
    // the longest backoff is 15 s (at least 11 s with its jitter); the short one retries within about 2 s
    await until(() => member.c.connected, 5000, 'connected once control answers');
  } finally {
    member.c.stop();
    await R.close();
    await ctl.close();
  }
});
