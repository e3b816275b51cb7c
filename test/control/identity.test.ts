// Identity at the control server: users, auth keys owned by a user or tagged,
// their listing (never the secret) and revocation, and node approval, against
// a real server on loopback where nodes are involved.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { admin } from '../../src/control/admin-client.js';
import { createAuthKey, redeemAuthKey } from '../../src/control/authkeys.js';
import { createUser, deleteUser, listAuthKeys, listUsers, parseTags, revokeAuthKey } from '../../src/control/identity.js';
import { MAX_TAGS_PER_NODE, MAX_USER_NAME_CHARS } from '../../src/netmap/identity.js';
import { Registry } from '../../src/control/registry.js';
import { SqliteStore } from '../../src/control/sqlite-store.js';
import { controlErrorCode } from './helpers.js';
import type { NetworkMap, NodeView } from '../../src/netmap/types.js';
import { harness, Node, openStream, registerBody, until, type OpenStream } from './helpers.js';

async function withRegistry(fn: (r: Registry) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-identity-'));
  const s = new SqliteStore(join(dir, 'control.db'));
  try {
    await fn(await Registry.open(s, { keyExpiryMs: null }));
  } finally {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const code = controlErrorCode;

/** The latest map on a stream as the server sent it (owner and tags included). */
function rawMap(s: OpenStream): NetworkMap | undefined {
  for (const line of [...s.lines()].reverse()) {
    const l = JSON.parse(line) as { type: string; map?: NetworkMap };
    if (l.type === 'map') return l.map;
  }
  return undefined;
}

const peer = (m: NetworkMap | undefined, name: string): NodeView | undefined => m?.peers.find((p) => p.name === name);

test('users: names are checked and bounded, duplicates refused, delete refused while the user owns keys or nodes unless forced', async () => {
  await withRegistry(async (r) => {
    assert.deepEqual(await createUser(r, 'alice'), { name: 'alice' });
    assert.equal(await code(async () => await createUser(r, 'alice')), 'CONFLICT');
    for (const badName of ['Alice', '', '-x', 'tag:x', 'a b', 'bob@example.com', 'a'.repeat(MAX_USER_NAME_CHARS + 1), 'é']) {
      assert.equal(await code(async () => await createUser(r, badName)), 'BAD_REQUEST', badName);
    }
    await createUser(r, 'a'.repeat(MAX_USER_NAME_CHARS));
    await createUser(r, 'bob.smith');
    assert.deepEqual(
      (await listUsers(r)).map((u) => u.name),
      ['a'.repeat(MAX_USER_NAME_CHARS), 'alice', 'bob.smith'],
    );

    const key = await createAuthKey(r.store, { reusable: true, ephemeral: false, expiryMs: null, user: 'alice' });
    const base = { discoKey: 'd', os: 'linux', version: 't', endpoints: [], homeRelay: null, ephemeral: false, authKeyId: key.record.id, createdAtMs: 0 };
    const n = await r.store.insertNode({
      ...base,
      nodeKey: 'k',
      hostname: 'laptop',
      requestedHostname: 'laptop',
      ipv4: '100.64.0.1',
      ipv6: 'fd00::1',
      lastSeenMs: null,
      keyExpiresAtMs: null,
      connected: false,
      user: 'alice',
    });
    assert.deepEqual(
      (await listUsers(r)).find((u) => u.name === 'alice'),
      { name: 'alice', created: (await listUsers(r))[1]!.created, nodes: 1, authKeys: 1 },
    );
    assert.equal(await code(async () => await deleteUser(r, 'alice', false)), 'CONFLICT');
    assert.ok((await r.store.getUser('alice')) && (await r.store.getNode(n.id)), 'nothing deleted by the refusal');
    assert.deepEqual(await deleteUser(r, 'alice', true), { name: 'alice', deletedNodes: [n.id], deletedAuthKeys: 1 });
    assert.equal(await r.store.getNode(n.id), null);
    assert.equal(await r.store.getAuthKey(key.record.id), null);
    assert.equal(await code(async () => await deleteUser(r, 'alice', false)), 'NOT_FOUND');
    assert.deepEqual((await deleteUser(r, 'bob.smith', false)).deletedNodes, []);
  });
});

test('tags: tag:NAME only, de-duplicated, bounded', async () => {
  assert.deepEqual(parseTags(['tag:server', 'tag:nas', 'tag:server']), ['tag:server', 'tag:nas']);
  for (const t of [[], ['server'], ['tag:'], ['tag:Server'], ['tag:a b'], ['tag:-x'], [`tag:${'a'.repeat(61)}`]]) {
    assert.equal(await code(async () => parseTags(t)), 'BAD_REQUEST', JSON.stringify(t));
  }
  const many = Array.from({ length: MAX_TAGS_PER_NODE + 1 }, (_, i) => `tag:t${i}`);
  assert.equal(await code(async () => parseTags(many)), 'BAD_REQUEST');
  assert.equal(parseTags(many.slice(0, MAX_TAGS_PER_NODE)).length, MAX_TAGS_PER_NODE);
});

test('auth key list shows the public prefix and owner, never the secret or its hash; a revoked key redeems nothing', async () => {
  await withRegistry(async (r) => {
    await createUser(r, 'alice');
    const k = await createAuthKey(r.store, { reusable: true, ephemeral: false, expiryMs: null, user: 'alice' });
    const t = await createAuthKey(r.store, { reusable: false, ephemeral: true, expiryMs: 60_000, tags: ['tag:server'] });
    const rows = await listAuthKeys(r);
    const text = JSON.stringify(rows);
    for (const x of [k, t]) {
      assert.ok(!text.includes(x.key.split('-')[2]!), 'no secret');
      assert.ok(!text.includes((await r.store.getAuthKey(x.record.id))!.secretHash), 'no hash of the secret');
    }
    assert.deepEqual(
      rows.map((x) => [x.prefix, x.user, x.tags, x.reusable, x.ephemeral, x.revoked, x.used]),
      [
        [`mskey-${k.record.id}`, 'alice', [], true, false, false, 0],
        [`mskey-${t.record.id}`, null, ['tag:server'], false, true, false, 0],
      ],
    );
    assert.deepEqual(await revokeAuthKey(r, `mskey-${k.record.id}`), { id: k.record.id, alreadyRevoked: false });
    assert.deepEqual(await revokeAuthKey(r, k.record.id), { id: k.record.id, alreadyRevoked: true });
    assert.equal(await code(async () => await redeemAuthKey(r.store, k.key)), 'AUTHKEY_REVOKED');
    assert.equal(await code(async () => await revokeAuthKey(r, 'feedfeedfeed')), 'NOT_FOUND');
    assert.equal(await code(async () => await revokeAuthKey(r, k.key)), 'BAD_REQUEST', 'a whole key (secret included) is not an id');
  });
});

test("a key's user or tags reach the node's view in every map, and re-registration keeps them", async () => {
  const h = await harness();
  try {
    await admin.createUser(h.dir, 'alice');
    const userKey = (await admin.createAuthKey(h.dir, { reusable: true, ephemeral: false, expiryMs: null, user: 'alice' })).key;
    const tagKey = (await admin.createAuthKey(h.dir, { reusable: true, ephemeral: false, expiryMs: null, tags: ['tag:server', 'tag:nas'] })).key;
    const laptop = new Node(h.server.publicKey!);
    const nas = new Node(h.server.publicKey!);
    const plain = new Node(h.server.publicKey!);
    const reg = await h.post('/meshctl/v1/register', laptop.seal('register', registerBody(userKey, 'laptop')));
    assert.equal(reg.status, 200);
    assert.equal((reg.body.node as NodeView).user, 'alice');
    assert.equal((await h.post('/meshctl/v1/register', nas.seal('register', registerBody(tagKey, 'nas')))).status, 200);
    assert.equal((await h.post('/meshctl/v1/register', plain.seal('register', registerBody(await h.authKey(), 'plain')))).status, 200);

    const s = await openStream(h, plain);
    try {
      await until(() => peer(rawMap(s), 'nas') !== undefined && peer(rawMap(s), 'laptop') !== undefined, 5000, 'both peers in the map');
      const m = rawMap(s)!;
      assert.deepEqual([peer(m, 'laptop')!.user, peer(m, 'laptop')!.tags], ['alice', undefined]);
      assert.deepEqual([peer(m, 'nas')!.user, peer(m, 'nas')!.tags], [undefined, ['tag:server', 'tag:nas']]);
      assert.deepEqual([m.self.user, m.self.tags], [undefined, undefined], 'a key with neither: no owner, no tags');
    } finally {
      s.req.destroy();
    }
    // re-authentication with another key, and a plain re-registration: the node keeps its owner
    assert.equal((await h.post('/meshctl/v1/register', laptop.seal('register', registerBody(tagKey, 'laptop')))).status, 200);
    const again = await h.post('/meshctl/v1/register', laptop.seal('register', registerBody(undefined, 'laptop')));
    assert.deepEqual([(again.body.node as NodeView).user, (again.body.node as NodeView).tags], ['alice', undefined]);
    const listed = await admin.listNodes(h.dir);
    assert.deepEqual(
      listed.map((n) => [n.name, n.user, n.tags]),
      [
        ['laptop', 'alice', []],
        ['nas', null, ['tag:server', 'tag:nas']],
        ['plain', null, []],
      ],
    );
    // an unknown user, or a user and tags together, makes no key
    await assert.rejects(admin.createAuthKey(h.dir, { reusable: false, ephemeral: false, expiryMs: null, user: 'bob' }), { code: 'NOT_FOUND' });
    await assert.rejects(admin.createAuthKey(h.dir, { reusable: false, ephemeral: false, expiryMs: null, user: 'alice', tags: ['tag:x'] }), {
      code: 'BAD_REQUEST',
    });
  } finally {
    await h.close();
  }
});

test('a revoked key registers no new node (AUTHKEY_REVOKED) and the nodes it registered stay in the maps', async () => {
  const h = await harness();
  try {
    const k = await admin.createAuthKey(h.dir, { reusable: true, ephemeral: false, expiryMs: null });
    const a = new Node(h.server.publicKey!);
    assert.equal((await h.post('/meshctl/v1/register', a.seal('register', registerBody(k.key, 'a')))).status, 200);
    assert.deepEqual(await admin.revokeAuthKey(h.dir, k.id), { id: k.id, alreadyRevoked: false });
    const b = new Node(h.server.publicKey!);
    const refused = await h.post('/meshctl/v1/register', b.seal('register', registerBody(k.key, 'b')));
    assert.equal(refused.status, 403);
    assert.equal((refused.body.error as { code: string }).code, 'AUTHKEY_REVOKED');
    assert.equal((await admin.listAuthKeys(h.dir))[0]!.revoked, true);
    // a is still a member: it opens its map stream and re-registers without a key
    const s = await openStream(h, a);
    try {
      await until(() => rawMap(s) !== undefined, 5000, "a's map");
      assert.equal(rawMap(s)!.self.name, 'a');
    } finally {
      s.req.destroy();
    }
    assert.equal((await h.post('/meshctl/v1/register', a.seal('register', registerBody(undefined, 'a')))).status, 200);
    assert.deepEqual(
      (await admin.listNodes(h.dir)).map((n) => n.name),
      ['a'],
    );
  } finally {
    await h.close();
  }
});

test('with --require-approval a new node is pending, in no map and refused a map (NODE_PENDING), until approved', async () => {
  const h = await harness({ requireApproval: true });
  try {
    const key = await h.authKey();
    const a = new Node(h.server.publicKey!);
    const b = new Node(h.server.publicKey!);
    assert.equal((await h.post('/meshctl/v1/register', a.seal('register', registerBody(key, 'a')))).status, 200);
    assert.equal((await h.post('/meshctl/v1/register', b.seal('register', registerBody(key, 'b')))).status, 200);
    assert.deepEqual(
      (await admin.listNodes(h.dir)).map((n) => [n.name, n.pending]),
      [
        ['a', true],
        ['b', true],
      ],
    );
    const waiting = await h.post('/meshctl/v1/map', b.seal('map', { endpoints: [], discoKey: registerBody(undefined).discoKey }));
    assert.equal(waiting.status, 403);
    assert.equal((waiting.body.error as { code: string }).code, 'NODE_PENDING');
    assert.match((waiting.body.error as { message: string }).message, /waiting for approval at the control server.*nodes approve b/);
    assert.equal((await h.get(`/meshctl/v1/verify?nodeKey=${encodeURIComponent(b.key)}`)).status, 404, 'relays do not serve a pending node');

    assert.deepEqual(await admin.approveNode(h.dir, 'a'), { id: 1, name: 'a', alreadyApproved: false });
    const s = await openStream(h, a);
    try {
      await until(() => rawMap(s) !== undefined, 5000, "a's map");
      assert.equal(peer(rawMap(s), 'b'), undefined, 'a pending node is in no map');
      await admin.approveNode(h.dir, 'b');
      await until(() => peer(rawMap(s), 'b') !== undefined, 5000, 'b in a’s map once approved');
    } finally {
      s.req.destroy();
    }
    const sb = await openStream(h, b);
    try {
      await until(() => peer(rawMap(sb), 'a') !== undefined, 5000, "b's map, with a");
    } finally {
      sb.req.destroy();
    }
    await assert.rejects(admin.approveNode(h.dir, 'nobody'), { code: 'NODE_UNKNOWN' });
  } finally {
    await h.close();
  }
});
