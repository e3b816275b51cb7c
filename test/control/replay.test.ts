// Sealed requests cannot be replayed or re-aimed: the timestamp must be within
// 2 minutes of the server's (injected) clock, the op inside the box must match
// the path, and the nonce cache lives in the database, so a request captured
// before a restart is still refused after it. The cache is bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ControlServer } from '../../src/control/server.js';
import { harness, Node, registerBody, send, storeOf } from './helpers.js';

const P = '/meshctl/v1';
const code = (r: { body: Record<string, unknown> }) => (r.body.error as { code?: string } | undefined)?.code;

test('a timestamp more than 2 minutes off the server clock is refused, either way', async () => {
  let now = Date.now();
  const h = await harness({ now: () => now });
  try {
    const authKey = await h.authKey();
    const n = new Node(h.server.publicKey!);
    assert.equal((await h.post(`${P}/register`, n.seal('register', registerBody(authKey), now))).status, 200);
    const sealedAt = now;
    const old = n.seal('endpoints', { endpoints: [] }, sealedAt);
    const ahead = n.seal('endpoints', { endpoints: [] }, sealedAt);
    now = sealedAt + 2 * 60_000 + 1;
    const r = await h.post(`${P}/endpoints`, old);
    assert.equal(r.status, 401);
    assert.equal(code(r), 'STALE_REQUEST');
    assert.match(String((r.body.error as { message: string }).message), /more than 2 minutes off/);
    now = sealedAt - 2 * 60_000 - 1;
    assert.equal(code(await h.post(`${P}/endpoints`, ahead)), 'STALE_REQUEST', 'a timestamp from the future');
    now = sealedAt + 2 * 60_000 - 1000;
    assert.equal((await h.post(`${P}/endpoints`, ahead)).status, 200, 'inside the window');
  } finally {
    await h.close();
  }
});

test('a request sealed for one operation is refused on another path, and its own path still takes it once', async () => {
  const h = await harness();
  try {
    const authKey = await h.authKey();
    const n = new Node(h.server.publicKey!);
    assert.equal((await h.post(`${P}/register`, n.seal('register', registerBody(authKey)))).status, 200);
    const logout = n.seal('logout', {});
    for (const path of ['register', 'endpoints', 'map']) {
      const r = await h.post(`${P}/${path}`, logout);
      assert.equal(r.status, 400, `${path}: ${JSON.stringify(r.body)}`);
      assert.match(String((r.body.error as { message: string }).message), new RegExp(`sealed for logout, sent to ${path}`));
    }
    assert.equal((await h.post(`${P}/logout`, logout)).status, 200);
    assert.equal(code(await h.post(`${P}/logout`, logout)), 'STALE_REQUEST', 'replayed');
  } finally {
    await h.close();
  }
});

test('a request captured before a restart is still refused after it (same state dir)', async () => {
  const h = await harness();
  const authKey = await h.authKey();
  const n = new Node(h.server.publicKey!);
  assert.equal((await h.post(`${P}/register`, n.seal('register', registerBody(authKey)))).status, 200);
  const captured = n.seal('endpoints', { endpoints: ['192.0.2.1:5'] });
  assert.equal((await h.post(`${P}/endpoints`, captured)).status, 200);
  await h.server.stop();
  const again = new ControlServer({ host: '127.0.0.1', port: 0, stateDir: h.dir });
  await again.start();
  try {
    const r = await send(`https://127.0.0.1:${again.boundPort}`, again.certPem, 'POST', `${P}/endpoints`, JSON.stringify(captured));
    assert.equal(r.status, 401, JSON.stringify(r.body));
    assert.match(String((r.body.error as { message: string }).message), /replayed/);
    const fresh = n.seal('endpoints', { endpoints: [] });
    const ok = await send(`https://127.0.0.1:${again.boundPort}`, again.certPem, 'POST', `${P}/endpoints`, JSON.stringify(fresh));
    assert.equal(ok.status, 200, 'a fresh request from the same node still works');
  } finally {
    await again.stop();
    await h.close();
  }
});

test('the nonce cache is bounded: per node key and in total it refuses (never forgets early), and expired nonces make room', async () => {
  let now = Date.now();
  const h = await harness({ now: () => now, limits: { maxSeenNonces: 6, maxSeenNoncesPerKey: 3 } });
  try {
    const authKey = await h.authKey();
    const a = new Node(h.server.publicKey!);
    const b = new Node(h.server.publicKey!);
    const c = new Node(h.server.publicKey!);
    // only requests that change something keep a nonce: registrations, and updates from registered nodes
    const register = (n: Node) => h.post(`${P}/register`, n.seal('register', registerBody(authKey, 'n'), now));
    const update = (n: Node, tsMs = now) => h.post(`${P}/endpoints`, n.seal('endpoints', { endpoints: [] }, tsMs));
    assert.equal((await register(a)).status, 200);
    for (let i = 0; i < 2; i++) assert.equal((await update(a)).status, 200);
    const over = await update(a);
    assert.equal(over.status, 429, 'a fourth nonce of one key inside the window');
    assert.equal(code(over), 'RATE_LIMITED');
    assert.equal((await register(b)).status, 200, 'another key is not affected');
    for (let i = 0; i < 2; i++) assert.equal((await update(b)).status, 200, 'another key is not affected');
    assert.equal((await register(c)).status, 429, 'the total cap is reached: refused, not evicted');
    const count = (): Promise<number> => storeOf(h).nonceCount();
    assert.equal(await count(), 6);
    // a nonce is kept until its timestamp leaves the window, then pruned
    now += 2 * 60_000 + 1;
    assert.equal((await update(a)).status, 200);
    assert.equal(await count(), 1);
    // a request dated ahead (a node clock running fast) is remembered until its own timestamp leaves the window
    const ahead = a.seal('endpoints', { endpoints: [] }, now + 100_000);
    assert.equal((await h.post(`${P}/endpoints`, ahead)).status, 200);
    now += 2 * 60_000 + 1;
    assert.equal(code(await h.post(`${P}/endpoints`, ahead)), 'STALE_REQUEST', 'still remembered 2 minutes later, while it is fresh');
  } finally {
    await h.close();
  }
});
