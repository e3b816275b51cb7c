import { test } from 'node:test';
import assert from 'node:assert/strict';
import sqlite from 'node-sqlite3-wasm';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { allocateAddresses, ipv6Prefix } from '../../src/control/addresses.js';
import { createAuthKey, redeemAuthKey } from '../../src/control/authkeys.js';
import { Registry, sanitizeHostname } from '../../src/control/registry.js';
import { SqliteStore } from '../../src/control/sqlite-store.js';
import { controlErrorCode } from './helpers.js';
import { parseIp, parsePrefix, prefixContains } from '../../src/util/netaddr.js';
import { UNDO_CHANGE_LOG, UNDO_IDENTITY } from './schema-undo.js';

async function withStore(fn: (s: SqliteStore, dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-store-'));
  const s = new SqliteStore(join(dir, 'control.db'));
  try {
    await fn(s, dir);
  } finally {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const code = controlErrorCode;

test('a fresh database is migrated to the latest schema, 0600, and keeps data across reopen', async () => {
  await withStore(async (s, dir) => {
    assert.equal(s.schemaVersion, 7);
    assert.equal(statSync(join(dir, 'control.db')).mode & 0o777, 0o600);
    await s.setMeta('k', 'v');
    await s.close();
    const again = new SqliteStore(join(dir, 'control.db'));
    assert.equal(await again.getMeta('k'), 'v');
    assert.equal(again.schemaVersion, 7);
    await again.close();
  });
});

test('auth keys are stored hashed; single-use, expired and unknown keys are refused', async () => {
  await withStore(async (s) => {
    const once = await createAuthKey(s, { reusable: false, ephemeral: false, expiryMs: null });
    assert.match(once.key, /^mskey-[0-9a-f]{12}-[0-9a-f]{48}$/);
    const secret = once.key.split('-')[2]!;
    assert.ok(!JSON.stringify(await s.listAuthKeys()).includes(secret), 'the secret is not in the database');
    assert.equal((await redeemAuthKey(s, once.key)).id, once.record.id);
    assert.equal(await code(async () => await redeemAuthKey(s, once.key)), 'AUTHKEY_USED');
    const many = await createAuthKey(s, { reusable: true, ephemeral: false, expiryMs: null });
    await redeemAuthKey(s, many.key);
    await redeemAuthKey(s, many.key);
    const short = await createAuthKey(s, { reusable: true, ephemeral: false, expiryMs: 1000 }, 0);
    assert.equal(await code(async () => await redeemAuthKey(s, short.key, 1000)), 'AUTHKEY_EXPIRED');
    assert.equal(await code(async () => await redeemAuthKey(s, many.key.slice(0, -1) + (many.key.endsWith('0') ? '1' : '0'))), 'AUTHKEY_INVALID');
    assert.equal(await code(async () => await redeemAuthKey(s, 'tskey-abc')), 'AUTHKEY_INVALID');
  });
});

test('addresses are unique, from 100.64.0.0/10 and one ULA /48, and never reused', async () => {
  await withStore(async (s) => {
    const seen = new Set<string>();
    for (let i = 0; i < 600; i++) {
      const a = await allocateAddresses(s);
      assert.match(a.ipv4, /^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.\d+\.\d+$/);
      assert.ok(!a.ipv4.endsWith('.0') && !a.ipv4.endsWith('.255'));
      assert.ok(!seen.has(a.ipv4));
      seen.add(a.ipv4);
      assert.equal(parsePrefix(`${a.ipv6}/48`).address.text, a.ipv6, 'canonical text');
      assert.ok(prefixContains(parsePrefix(await ipv6Prefix(s)), parseIp(a.ipv6)));
    }
    assert.match(await ipv6Prefix(s), /^fd[0-9a-f]{2}:[0-9a-f]{1,4}(:[0-9a-f]{1,4})?::\/48$/);
    assert.equal(parsePrefix(await ipv6Prefix(s)).text, await ipv6Prefix(s), 'canonical text');
  });
});

test('a prefix and addresses stored with leading zeros in a group are read back in canonical text', async () => {
  await withStore(async (s, dir) => {
    await s.setMeta('ipv6_prefix', 'fdbf:de64:0054::/48');
    assert.equal(await ipv6Prefix(s), 'fdbf:de64:54::/48');
    const a = await allocateAddresses(s);
    assert.ok(a.ipv6.startsWith('fdbf:de64:54::'), a.ipv6);
    const r = await Registry.open(s, { keyExpiryMs: 60_000 });
    const key = (await createAuthKey(s, { reusable: true, ephemeral: false, expiryMs: null })).key;
    await r.register('A', { authKey: key, hostname: 'z', os: 'linux', version: '0', discoKey: 'd', endpoints: [] });
    // a row written with leading zeros in a group, as older databases hold them (the store keeps the file locked while open)
    await s.close();
    const db = new sqlite.Database(join(dir, 'control.db'));
    db.run("UPDATE nodes SET ipv6 = 'fdbf:de64:0054::6440:0002'");
    db.close();
    const again = new SqliteStore(join(dir, 'control.db'));
    assert.equal((await again.listNodes())[0]!.ipv6, 'fdbf:de64:54::6440:2');
    await again.close();
  });
});

test('registration: known keys need no auth key, hostnames stay unique, expiry forces re-auth', async () => {
  await withStore(async (s) => {
    let now = 1_000_000;
    const r = await Registry.open(s, { keyExpiryMs: 60_000, now: () => now });
    const key = (await createAuthKey(s, { reusable: true, ephemeral: false, expiryMs: null })).key;
    const body = { authKey: null, hostname: 'My NAS!', os: 'linux', version: '0', discoKey: 'd', endpoints: ['10.0.0.1:41641', '[fd00::1]:5'] };
    assert.equal(await code(async () => await r.register('A', body)), 'AUTHKEY_REQUIRED');
    const a = await r.register('A', { ...body, authKey: key });
    assert.equal(a.hostname, 'my-nas');
    assert.deepEqual(a.endpoints, ['10.0.0.1:41641', '[fd00::1]:5']);
    const b = await r.register('B', { ...body, authKey: key });
    assert.equal(b.hostname, 'my-nas-1');
    const again = await r.register('A', body);
    assert.equal(again.ipv4, a.ipv4, 'same address on re-registration');
    assert.equal(again.hostname, 'my-nas');
    now += 60_001;
    assert.equal(await code(async () => await r.register('A', body)), 'NODE_EXPIRED');
    assert.equal(r.mapFor(b, () => true, []).peers.length, 0, 'an expired node is not in others’ maps');
    const reauth = await r.register('A', { ...body, authKey: key });
    assert.equal(reauth.ipv4, a.ipv4);
    assert.equal(r.mapFor(b, () => true, []).peers.length, 1);
    assert.equal(sanitizeHostname('---'), 'node');
    // a third with the name, and a name at the length limit: the number replaces its end
    assert.equal((await r.register('C', { ...body, authKey: key })).hostname, 'my-nas-2');
    const long = { ...body, hostname: 'x'.repeat(80), authKey: key };
    assert.equal((await r.register('L1', long)).hostname, 'x'.repeat(63));
    assert.equal((await r.register('L2', long)).hostname, `${'x'.repeat(61)}-1`);
    const own = `${'x'.repeat(61)}-1`;
    assert.equal((await r.register('L2', { ...long, hostname: own })).hostname, own, 'asking for the name it has, a node keeps it');
  });
});

test('a schema-4 database gains advertised routes, approvals and devices with its nodes kept; both go with their node', async () => {
  await withStore(async (s, dir) => {
    await s.insertAuthKey({ id: 'k', secretHash: 'x', reusable: true, ephemeral: false, createdAtMs: 0, expiresAtMs: null, usedCount: 0 });
    const base = { discoKey: 'd', os: 'linux', version: 't', endpoints: [], homeRelay: null, ephemeral: false, authKeyId: 'k', createdAtMs: 0 };
    const n = await s.insertNode({
      ...base,
      nodeKey: 'a',
      hostname: 'a',
      requestedHostname: 'a',
      ipv4: '100.64.0.1',
      ipv6: 'fd00::1',
      lastSeenMs: null,
      keyExpiresAtMs: null,
      connected: false,
    });
    await s.close();
    // what a database made before routes existed looks like
    const raw = new sqlite.Database(join(dir, 'control.db'));
    raw.exec(
      `${UNDO_CHANGE_LOG} ${UNDO_IDENTITY} DROP TABLE route_approvals; DROP TABLE devices; ALTER TABLE nodes DROP COLUMN advertised_routes;
       ALTER TABLE nodes DROP COLUMN advertised_exit; PRAGMA user_version = 4;`,
    );
    raw.close();
    const again = new SqliteStore(join(dir, 'control.db'));
    try {
      assert.equal(again.schemaVersion, 7);
      const kept = (await again.getNode(n.id))!;
      assert.deepEqual([kept.hostname, kept.advertisedRoutes, kept.advertisedExit], ['a', [], false]);
      await again.updateNode(n.id, { advertisedRoutes: ['10.0.0.0/8'], advertisedExit: true });
      assert.deepEqual((await again.getNode(n.id))!.advertisedRoutes, ['10.0.0.0/8']);
      assert.equal(await again.approveRoute({ nodeId: n.id, prefix: '10.0.0.0/8' }), true);
      assert.equal(await again.approveRoute({ nodeId: n.id, prefix: '10.0.0.0/8' }), false, 'already approved');
      await again.insertDevice({ name: 'phone', publicKey: 'pk', ipv4: '100.64.0.2', ipv6: 'fd00::2', gatewayId: n.id, createdAtMs: 0 });
      assert.equal((await again.listDevices()).length, 1);
      await again.deleteNode(n.id);
      assert.deepEqual([await again.listRouteApprovals(), await again.listDevices()], [[], []]);
    } finally {
      await again.close();
    }
  });
});

test('a schema-5 database gains users, key owners, tags, revocation and pending approval with its keys and nodes kept', async () => {
  await withStore(async (s, dir) => {
    const key = await createAuthKey(s, { reusable: true, ephemeral: false, expiryMs: null });
    const r = await Registry.open(s, { keyExpiryMs: null });
    const body = { hostname: 'old', os: 'linux', version: 't', discoKey: 'd', endpoints: [] };
    const n = await r.register('K', { ...body, authKey: key.key });
    await s.close();
    // what a database made before identity existed looks like
    const raw = new sqlite.Database(join(dir, 'control.db'));
    raw.exec(`${UNDO_CHANGE_LOG} ${UNDO_IDENTITY} PRAGMA user_version = 5;`);
    raw.close();
    const again = new SqliteStore(join(dir, 'control.db'));
    try {
      assert.equal(again.schemaVersion, 7);
      const kept = (await again.getNode(n.id))!;
      assert.deepEqual([kept.hostname, kept.ipv4, kept.user, kept.tags, kept.pending], ['old', n.ipv4, null, [], false]);
      const k = (await again.getAuthKey(key.record.id))!;
      assert.deepEqual([k.usedCount, k.user, k.tags, k.revoked], [1, null, [], false]);
      assert.equal((await redeemAuthKey(again, key.key)).id, key.record.id, 'the old key still works');
      assert.equal(await again.insertUser({ name: 'alice', createdAtMs: 0 }), true);
      assert.equal(await again.insertUser({ name: 'alice', createdAtMs: 1 }), false);
    } finally {
      await again.close();
    }
  });
});
