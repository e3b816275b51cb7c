// Per-source request rates: a token bucket per source address, checked before
// a sealed request costs any crypto or database work, in a bounded table; and
// requests from keys the server cannot act on leave no nonce behind, so a
// flood from throwaway keys cannot fill the replay cache every node needs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { admin } from '../../src/control/admin-client.js';
import { SourceRateLimiter } from '../../src/control/rate-limit.js';
import { discoKey, harness, Node, registerBody, send, storeOf, type Harness } from './helpers.js';

const P = '/meshctl/v1';
const code = (r: { body: Record<string, unknown> }) => (r.body.error as { code?: string } | undefined)?.code;
const message = (r: { body: Record<string, unknown> }) => String((r.body.error as { message?: string } | undefined)?.message);

const nonceCount = (h: Harness): Promise<number> => storeOf(h).nonceCount();

test('a bucket gives a burst, then refuses with the wait until its next token, and refills with time', () => {
  let now = 1_000_000;
  const r = new SourceRateLimiter({ perSecond: 2, burst: 3, maxSources: 10 }, () => now);
  for (let i = 0; i < 3; i++) assert.equal(r.take('a'), 0);
  assert.equal(r.take('a'), 500, 'one token comes every 500 ms');
  assert.equal(r.take('b'), 0, 'another source has its own bucket');
  now += 250;
  assert.equal(r.take('a'), 250);
  now += 250;
  assert.equal(r.take('a'), 0);
  now += 60_000;
  for (let i = 0; i < 3; i++) assert.equal(r.take('a'), 0, 'refilled up to the burst, no further');
  assert.ok(r.take('a') > 0);
  now -= 30_000;
  assert.ok(r.take('a') > 0, 'a clock stepping back adds no tokens');
  assert.deepEqual(r.stats(), { sources: 2, refused: 4, evicted: 0 });
});

test('the table of sources stays bounded under many sources; the least recently seen is dropped first', () => {
  let now = 0;
  const r = new SourceRateLimiter({ perSecond: 0.001, burst: 2, maxSources: 100 }, () => now);
  r.take('busy');
  r.take('busy');
  assert.ok(r.take('busy') > 0, 'drained');
  for (let i = 0; i < 10_000; i++) {
    now += 1;
    assert.equal(r.take(`10.0.${i >> 8}.${i & 255}`), 0, 'a new source starts with a full bucket');
    // the busy source keeps asking, so it is never the least recently seen: it stays drained
    if (i % 50 === 0) assert.ok(r.take('busy') > 0, `busy source forgotten after ${i} others`);
    assert.ok(r.stats().sources <= 100);
  }
  assert.equal(r.stats().sources, 100);
  assert.ok(r.stats().evicted >= 9_900);
  // a source not seen since the table turned over is forgotten: it starts again with a full bucket
  assert.equal(r.take('10.0.0.0'), 0);
});

test('a burst of sealed requests from one source past its bucket gets 429 with Retry-After; another source gets through', async () => {
  // a token every 100 s: nothing refills while the test runs
  const h = await harness({
    limits: { sealedBurstPerSource: 5, sealedRequestsPerSecPerSource: 0.01, verifyBurstPerSource: 3, verifyRequestsPerSecPerSource: 0.01 },
  });
  try {
    const authKey = await h.authKey();
    const post = (body: unknown, path = 'logout', from = '127.0.0.1') => send(h.url, h.server.certPem, 'POST', `${P}/${path}`, JSON.stringify(body), from);
    for (let i = 0; i < 5; i++) assert.equal((await post(new Node(h.server.publicKey!).seal('logout', {}))).status, 200);
    const joiner = new Node(h.server.publicKey!);
    const over = await post(joiner.seal('register', registerBody(authKey, 'refused')), 'register');
    assert.equal(over.status, 429, JSON.stringify(over.body));
    assert.equal(code(over), 'RATE_LIMITED');
    assert.match(message(over), /^too many requests from your address: try again in \d+ s$/);
    const retry = Number(over.headers['retry-after']);
    assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= 100, `Retry-After: ${over.headers['retry-after']}`);
    // refused before it was opened: the auth key was not used, no node exists, no nonce was kept
    assert.equal((await admin.listNodes(h.dir)).length, 0);
    assert.equal(await nonceCount(h), 0);
    assert.equal(h.server.rateLimitStats().sealed.refused, 1);

    const other = await post(joiner.seal('register', registerBody(authKey, 'other-source')), 'register', '127.0.0.2');
    assert.equal(other.status, 200, `from 127.0.0.2: ${JSON.stringify(other.body)}`);
    assert.equal((await post(joiner.seal('endpoints', { endpoints: [] }), 'endpoints')).status, 429, 'still refused from 127.0.0.1');

    // relays' lookups have a bucket of their own: a source out of sealed requests can still ask
    const verify = () => send(h.url, h.server.certPem, 'GET', `${P}/verify?nodeKey=${encodeURIComponent(joiner.key)}`, undefined, '127.0.0.1');
    for (let i = 0; i < 3; i++) assert.equal((await verify()).status, 200);
    const vover = await verify();
    assert.equal(vover.status, 429);
    assert.match(message(vover), /^too many verify lookups from your address: try again in \d+ s$/);
    assert.ok(Number(vover.headers['retry-after']) >= 1);
    assert.equal((await send(h.url, h.server.certPem, 'GET', `${P}/verify?nodeKey=${encodeURIComponent(joiner.key)}`, undefined, '127.0.0.2')).status, 200);
  } finally {
    await h.close();
  }
});

test('requests from keys that are not registered leave no nonce: a flood of them cannot fill the cache registered nodes need', async () => {
  const h = await harness({ limits: { maxSeenNonces: 5 } });
  try {
    const authKey = await h.authKey();
    const member = new Node(h.server.publicKey!);
    assert.equal((await h.post(`${P}/register`, member.seal('register', registerBody(authKey, 'member')))).status, 200);
    assert.equal(await nonceCount(h), 1, 'a registration keeps its nonce');
    const badKey = `mskey-${'0'.repeat(12)}-${'0'.repeat(48)}`;
    for (let i = 0; i < 8; i++) {
      const n = new Node(h.server.publicKey!);
      assert.equal((await h.post(`${P}/logout`, n.seal('logout', {}))).status, 200, 'logout of no node');
      assert.equal(code(await h.post(`${P}/map`, n.seal('map', { endpoints: [], discoKey: discoKey() }))), 'NODE_UNKNOWN');
      assert.equal(code(await h.post(`${P}/endpoints`, n.seal('endpoints', { endpoints: [] }))), 'NODE_UNKNOWN');
      assert.equal(code(await h.post(`${P}/register`, n.seal('register', registerBody(undefined)))), 'AUTHKEY_REQUIRED');
      assert.equal(code(await h.post(`${P}/register`, n.seal('register', registerBody(badKey)))), 'AUTHKEY_INVALID');
    }
    assert.equal(await nonceCount(h), 1, 'the flood left nothing in seen_nonces');
    assert.equal((await h.post(`${P}/endpoints`, member.seal('endpoints', { endpoints: ['192.0.2.1:1'] }))).status, 200, 'the member still gets through');
    assert.equal(await nonceCount(h), 2);
  } finally {
    await h.close();
  }
});

test('requests that act keep their nonce and cannot be replayed; a replayed no-op still does nothing', async () => {
  const h = await harness();
  try {
    const authKey = await h.authKey();
    const n = new Node(h.server.publicKey!);
    const reg = n.seal('register', registerBody(authKey, 'once'));
    assert.equal((await h.post(`${P}/register`, reg)).status, 200);
    assert.equal(code(await h.post(`${P}/register`, reg)), 'STALE_REQUEST', 'a registration cannot be replayed');
    const again = n.seal('register', registerBody(undefined, 'renamed'));
    assert.equal((await h.post(`${P}/register`, again)).status, 200, 're-registration of a known node without an auth key');
    assert.equal(code(await h.post(`${P}/register`, again)), 'STALE_REQUEST');
    const logout = n.seal('logout', {});
    assert.equal((await h.post(`${P}/logout`, logout)).status, 200);
    assert.equal(code(await h.post(`${P}/logout`, logout)), 'STALE_REQUEST', 'its nonce outlives the node it deleted');
    const stranger = new Node(h.server.publicKey!).seal('logout', {});
    assert.equal((await h.post(`${P}/logout`, stranger)).status, 200);
    assert.equal((await h.post(`${P}/logout`, stranger)).status, 200, 'replaying a logout of no node does nothing, again');
    assert.equal((await admin.listNodes(h.dir)).length, 0);
  } finally {
    await h.close();
  }
});

test('a registration refused at the nonce cap does not use up a single-use auth key', async () => {
  let now = Date.now();
  const h = await harness({ now: () => now, limits: { maxSeenNonces: 1 } });
  try {
    const reusable = await h.authKey();
    assert.equal((await h.post(`${P}/register`, new Node(h.server.publicKey!).seal('register', registerBody(reusable, 'first'), now))).status, 200);
    const once = (await admin.createAuthKey(h.dir, { reusable: false, ephemeral: false, expiryMs: null })).key;
    const n = new Node(h.server.publicKey!);
    const full = await h.post(`${P}/register`, n.seal('register', registerBody(once, 'second'), now));
    assert.equal(full.status, 429, JSON.stringify(full.body));
    now += 2 * 60_000 + 1;
    assert.equal((await h.post(`${P}/register`, n.seal('register', registerBody(once, 'second'), now))).status, 200, 'the key was not consumed');
  } finally {
    await h.close();
  }
});
