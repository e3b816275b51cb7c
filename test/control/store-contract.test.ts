// One suite for every ControlStore: the SQLite file and PostgreSQL (a real
// throwaway cluster, test/helpers/postgres.ts) must behave the same — every
// method, transactions that land whole or not at all, migrations from empty
// and again, and single-use auth keys consumed once under concurrent joins.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAuthKey, redeemAuthKey } from '../../src/control/authkeys.js';
import { Registry } from '../../src/control/registry.js';
import { PgStore, type PgStoreError, parsePgUrl } from '../../src/control/pg-store.js';
import { SqliteStore } from '../../src/control/sqlite-store.js';
import type { ControlStore } from '../../src/control/store.js';
import type { ControlError } from '../../src/control/protocol.js';
import { postgresSkipReason, startPostgres, type PgCluster } from '../helpers/postgres.js';
import { storeNode } from '../helpers/store-node.js';

interface Backend {
  /** a new, empty store */
  fresh(): Promise<ControlStore>;
  /** the same database opened again (migrations run again) */
  reopen(s: ControlStore): Promise<ControlStore>;
}

const node = storeNode;

const registerBody = (authKey: string, hostname: string) => ({
  hostname,
  os: 'linux',
  version: '1',
  discoKey: 'd'.repeat(64),
  endpoints: [],
  authKey,
});

function contract(name: string, backend: () => Backend | null): void {
  describe(`ControlStore contract: ${name}`, () => {
    const open = async (t: { skip: (m: string) => void }): Promise<ControlStore | null> => {
      const b = backend();
      if (!b) {
        t.skip('no backend');
        return null;
      }
      return b.fresh();
    };

    test('meta, users and auth keys: every method', async (t) => {
      const s = await open(t);
      if (!s) return;
      try {
        assert.equal(await s.getMeta('k'), null);
        await s.setMeta('k', 'v1');
        await s.setMeta('k', 'v2');
        assert.equal(await s.getMeta('k'), 'v2');
        assert.equal(await s.insertUser({ name: 'bob', createdAtMs: 5 }), true);
        assert.equal(await s.insertUser({ name: 'alice', createdAtMs: 6 }), true);
        assert.equal(await s.insertUser({ name: 'bob', createdAtMs: 7 }), false, 'a taken name is refused');
        assert.deepEqual(await s.listUsers(), [
          { name: 'alice', createdAtMs: 6 },
          { name: 'bob', createdAtMs: 5 },
        ]);
        assert.deepEqual(await s.getUser('bob'), { name: 'bob', createdAtMs: 5 });
        assert.equal(await s.getUser('carol'), null);
        const key = { id: 'a1', secretHash: 'ff', reusable: false, ephemeral: true, createdAtMs: 1, expiresAtMs: 2 ** 45, usedCount: 0 };
        await s.insertAuthKey({ ...key, user: 'bob' });
        await s.insertAuthKey({ ...key, id: 'a2', createdAtMs: 2, expiresAtMs: null, tags: ['tag:x'] });
        assert.deepEqual(await s.getAuthKey('a1'), { ...key, user: 'bob', tags: [], revoked: false });
        await s.markAuthKeyUsed('a1');
        assert.equal((await s.getAuthKey('a1'))!.usedCount, 1);
        assert.equal(await s.revokeAuthKey('a2'), true);
        assert.equal(await s.revokeAuthKey('nope'), false);
        assert.deepEqual(
          (await s.listAuthKeys()).map((k) => [k.id, k.revoked, k.tags]),
          [
            ['a1', false, []],
            ['a2', true, ['tag:x']],
          ],
        );
        assert.equal(await s.deleteAuthKeysOf('bob'), 1);
        assert.equal(await s.getAuthKey('a1'), null);
        assert.equal(await s.deleteUser('bob'), true);
        assert.equal(await s.deleteUser('bob'), false);
      } finally {
        await s.close();
      }
    });

    test('nodes, approvals, devices, DNS and nonces: every method, unique columns and cascades', async (t) => {
      const s = await open(t);
      if (!s) return;
      try {
        const a = await s.insertNode(node(1, { user: 'bob', tags: [], advertisedRoutes: ['10.0.0.0/24'], pending: true }));
        const b = await s.insertNode(node(2, { keyExpiresAtMs: 2 ** 44, homeRelay: 'r1', ephemeral: true }));
        assert.ok(b.id > a.id);
        assert.deepEqual(a.advertisedRoutes, ['10.0.0.0/24']);
        assert.equal(a.pending, true);
        assert.equal(b.keyExpiresAtMs, 2 ** 44);
        await assert.rejects(s.insertNode(node(3, { hostname: 'h1' })), 'a taken hostname is refused');
        await assert.rejects(s.insertNode(node(3, { ipv4: '100.64.0.1' })), 'a taken address is refused');
        await s.updateNode(a.id, { connected: true, endpoints: ['198.51.100.1:1'], lastSeenMs: 77, user: null, tags: ['tag:y'], advertisedExit: true });
        await s.updateNode(a.id, {});
        const a2 = (await s.getNode(a.id))!;
        assert.deepEqual(
          [a2.connected, a2.endpoints, a2.lastSeenMs, a2.user, a2.tags, a2.advertisedExit],
          [true, ['198.51.100.1:1'], 77, null, ['tag:y'], true],
        );
        assert.equal((await s.getNodeByKey('nk2'))!.id, b.id);
        assert.equal(await s.getNodeByKey('nope'), null);
        assert.deepEqual(
          (await s.listNodes()).map((n) => n.hostname),
          ['h1', 'h2'],
        );

        assert.equal(await s.approveRoute({ nodeId: a.id, prefix: '10.0.0.0/24' }), true);
        assert.equal(await s.approveRoute({ nodeId: a.id, prefix: '10.0.0.0/24' }), false);
        assert.equal(await s.approveRoute({ nodeId: b.id, prefix: '0.0.0.0/0' }), true);
        assert.equal(await s.removeRouteApproval({ nodeId: b.id, prefix: '::/0' }), false);
        const d = await s.insertDevice({ name: 'phone', publicKey: 'pk', ipv4: '100.64.0.9', ipv6: 'fd00::9', gatewayId: a.id, createdAtMs: 3 });
        assert.deepEqual(await s.listDevices(), [d]);
        // names in the way of a new one: nodes' and devices' (one namespace), but for the renamed node's own
        assert.deepEqual((await s.namesStartingWith('h', null)).sort(), ['h1', 'h2']);
        assert.deepEqual(await s.namesStartingWith('h', a.id), ['h2']);
        assert.deepEqual(await s.namesStartingWith('ph', b.id), ['phone']);
        assert.deepEqual(await s.namesStartingWith('h1', null), ['h1']);
        assert.deepEqual(await s.namesStartingWith('x', null), []);
        assert.deepEqual(await s.namesStartingWith('%', null), [], 'the prefix is matched as text, not as a pattern');
        await assert.rejects(s.insertDevice({ name: 'phone', publicKey: 'pk2', ipv4: '100.64.0.10', ipv6: 'fd00::a', gatewayId: a.id, createdAtMs: 3 }));
        // a node's approvals and devices go with it
        assert.equal(await s.deleteNode(a.id), true);
        assert.equal(await s.deleteNode(a.id), false);
        assert.deepEqual(await s.listRouteApprovals(), [{ nodeId: b.id, prefix: '0.0.0.0/0' }]);
        assert.deepEqual(await s.listDevices(), []);
        const d2 = await s.insertDevice({ name: 'tab', publicKey: 'pk3', ipv4: '100.64.0.11', ipv6: 'fd00::b', gatewayId: b.id, createdAtMs: 3 });
        assert.equal(await s.deleteDevice(d2.id), true);
        assert.equal(await s.deleteDevice(d2.id), false);

        assert.equal(await s.putDnsRoute({ domain: 'b.example', resolvers: ['10.0.0.53'] }), true);
        assert.equal(await s.putDnsRoute({ domain: 'b.example', resolvers: ['10.0.0.54'] }), false, 'a replaced route is not new');
        assert.equal(await s.putDnsRoute({ domain: 'a.example', resolvers: ['10.0.0.1:5353'] }), true);
        assert.deepEqual(await s.listDnsRoutes(), [
          { domain: 'a.example', resolvers: ['10.0.0.1:5353'] },
          { domain: 'b.example', resolvers: ['10.0.0.54'] },
        ]);
        assert.equal(await s.deleteDnsRoute('a.example'), true);
        assert.equal(await s.deleteDnsRoute('a.example'), false);
        assert.equal(await s.insertDnsRecord({ name: 'nas.x', type: 'A', value: '10.0.0.2' }), true);
        assert.equal(await s.insertDnsRecord({ name: 'nas.x', type: 'A', value: '10.0.0.2' }), false);
        assert.equal(await s.insertDnsRecord({ name: 'nas.x', type: 'AAAA', value: 'fd00::2' }), true);
        assert.equal(await s.insertDnsRecord({ name: 'Nas.x', type: 'A', value: '10.0.0.3' }), true);
        assert.deepEqual(
          (await s.listDnsRecords()).map((r) => `${r.name} ${r.type}`),
          ['Nas.x A', 'nas.x A', 'nas.x AAAA'],
          'ordered bytewise, as SQLite does',
        );
        assert.equal(await s.deleteDnsRecords('nas.x', 'fd00::2'), 1);
        assert.equal(await s.deleteDnsRecords('nas.x'), 1);

        const limits = { total: 3, perNodeKey: 2 };
        assert.equal(await s.rememberNonce('k1', 'n1', 100, 0, limits), 'fresh');
        assert.equal(await s.rememberNonce('k1', 'n1', 100, 0, limits), 'replayed');
        assert.equal(await s.hasNonce('k1', 'n1', 100), true);
        assert.equal(await s.hasNonce('k1', 'n1', 101), false, 'expired is not remembered');
        assert.equal(await s.rememberNonce('k1', 'n2', 100, 0, limits), 'fresh');
        assert.equal(await s.rememberNonce('k1', 'n3', 100, 0, limits), 'key-full');
        assert.equal(await s.rememberNonce('k2', 'n1', 50, 0, limits), 'fresh');
        assert.equal(await s.rememberNonce('k3', 'n1', 100, 0, limits), 'full');
        assert.equal(await s.nonceCount(), 3);
        // the expired one is pruned first, which makes room
        assert.equal(await s.rememberNonce('k3', 'n1', 200, 60, limits), 'fresh');
        assert.equal(await s.nonceCount(), 3);
      } finally {
        await s.close();
      }
    });

    test('the change log: a row per thing each committed write touched, numbered in commit order without gaps', async (t) => {
      const s = await open(t);
      if (!s) return;
      try {
        const start = await s.changeHead();
        const n = await s.insertNode(node(1));
        await s.updateNode(n.id, { endpoints: ['192.0.2.9:41641'] });
        await s.transaction(async (tx) => {
          await tx.setMeta('acl_policy', '{}');
          await tx.putDnsRoute({ domain: 'corp.test', resolvers: ['192.0.2.53'] });
          await tx.approveRoute({ nodeId: n.id, prefix: '10.0.0.0/8' });
        });
        // a rolled-back transaction logs nothing and takes no number
        await assert.rejects(
          s.transaction(async (tx) => {
            await tx.setMeta('x', '1');
            throw new Error('boom');
          }),
        );
        // writes that change no map are not logged
        await s.insertUser({ name: 'alice', createdAtMs: 1 });
        await s.deleteNode(n.id);
        const r = await s.changesSince(start, 100);
        assert.equal(r.behind, false);
        const got = r.behind ? [] : r.changes.map((c) => [c.seq - start, c.kind, c.nodeId]);
        assert.deepEqual(got, [
          [1, 'node', n.id],
          [2, 'node', n.id],
          [3, 'meta', null],
          [4, 'dns', null],
          [5, 'approvals', null],
          [6, 'node', n.id],
          [7, 'approvals', null],
          [8, 'devices', null],
          ...(name === 'PostgreSQL' ? [[9, 'presence', null]] : []),
        ]);
        assert.equal(await s.changeHead(), start + got.length);
        // read in batches, each from where the last ended
        const first = await s.changesSince(start, 2);
        const second = await s.changesSince(start + 2, 2);
        assert.deepEqual(
          [first, second].flatMap((x) => (x.behind ? [] : x.changes.map((c) => c.seq - start))),
          [1, 2, 3, 4],
        );
        assert.deepEqual(await s.changesSince(start + got.length, 10), { behind: false, head: start + got.length, changes: [] });
      } finally {
        await s.close();
      }
    });

    test('a transaction lands whole or not at all; a nested one joins it', async (t) => {
      const s = await open(t);
      if (!s) return;
      try {
        await assert.rejects(
          s.transaction(async (tx) => {
            await tx.setMeta('a', '1');
            await tx.insertNode(node(1));
            await tx.transaction(async (inner) => inner.setMeta('b', '2'));
            throw new Error('boom');
          }),
          /boom/,
        );
        assert.equal(await s.getMeta('a'), null);
        assert.equal(await s.getMeta('b'), null);
        assert.deepEqual(await s.listNodes(), []);
        const out = await s.transaction(async (tx) => {
          await tx.setMeta('a', '1');
          return (await tx.insertNode(node(1))).hostname;
        });
        assert.equal(out, 'h1');
        assert.equal(await s.getMeta('a'), '1');
        // a statement outside waits for the open transaction instead of landing in it
        let release!: () => void;
        const gate = new Promise<void>((r) => (release = r));
        let begun!: () => void;
        const inside = new Promise<void>((r) => (begun = r));
        const tx = s.transaction(async (x) => {
          await x.setMeta('c', 'in');
          begun();
          await gate;
          throw new Error('rolled back');
        });
        await inside;
        const outside = s.setMeta('d', 'out');
        release();
        await assert.rejects(tx, /rolled back/);
        await outside;
        assert.equal(await s.getMeta('c'), null);
        assert.equal(await s.getMeta('d'), 'out');
      } finally {
        await s.close();
      }
    });

    test('migrations: from empty, and again on reopen, with the data kept', async (t) => {
      const b = backend();
      if (!b) return t.skip('no backend');
      const s = await b.fresh();
      await s.setMeta('kept', 'yes');
      const again = await b.reopen(s);
      const third = await b.reopen(again);
      try {
        assert.equal(await third.getMeta('kept'), 'yes');
      } finally {
        await third.close();
      }
    });

    test('concurrent joins with one single-use auth key: exactly one gets in, and addresses stay unique', async (t) => {
      const s = await open(t);
      if (!s) return;
      try {
        const r = await Registry.open(s, { keyExpiryMs: null });
        const once = await createAuthKey(r.store, { reusable: false, ephemeral: false, expiryMs: null });
        const outcomes = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => r.register(`key${i}`, registerBody(once.key, 'same') as never)));
        const won = outcomes.filter((o) => o.status === 'fulfilled');
        assert.equal(won.length, 1, 'one join wins');
        for (const o of outcomes) if (o.status === 'rejected') assert.equal((o.reason as ControlError).code, 'AUTHKEY_USED');
        assert.equal((await s.getAuthKey(once.record.id))!.usedCount, 1);
        const many = await createAuthKey(r.store, { reusable: true, ephemeral: false, expiryMs: null });
        const nodes = await Promise.all(Array.from({ length: 8 }, (_, i) => r.register(`many${i}`, registerBody(many.key, 'same') as never)));
        assert.equal(new Set(nodes.map((n) => n.ipv4)).size, 8, 'no address handed out twice');
        assert.equal(new Set(nodes.map((n) => n.hostname)).size, 8, 'no hostname handed out twice');
        assert.deepEqual(
          r.nodes().map((n) => n.id),
          (await s.listNodes()).map((n) => n.id),
          'the registry read every change',
        );
        await assert.rejects(redeemAuthKey(s, once.key), (e: ControlError) => e.code === 'AUTHKEY_USED');
      } finally {
        await s.close();
      }
    });
  });
}

const sqliteDir = mkdtempSync(join(tmpdir(), 'meshctl-contract-'));
let sqliteCount = 0;
after(() => rmSync(sqliteDir, { recursive: true, force: true }));
contract('SQLite', () => ({
  fresh: async () => new SqliteStore(join(sqliteDir, `c${++sqliteCount}.db`)),
  reopen: async (s) => {
    const path = (s as SqliteStore).path;
    await s.close();
    return new SqliteStore(path);
  },
}));

let cluster: PgCluster | null = null;
let pgCount = 0;
const pgSkip = postgresSkipReason();
before(async () => {
  if (!pgSkip) cluster = await startPostgres();
});
after(async () => cluster?.stop());
contract('PostgreSQL', () => {
  const c = cluster;
  if (!c) return null;
  return {
    fresh: async () => PgStore.open(await c.createDatabase(`contract${++pgCount}`)),
    reopen: async (s) => {
      const url = c.url((s as PgStore).target.database);
      await s.close();
      return PgStore.open(url);
    },
  };
});

describe('PostgreSQL store: URLs, errors and concurrent migration', { skip: pgSkip || undefined }, () => {
  test('a URL with a password, or not postgres://, is refused with the fix', () => {
    assert.throws(
      () => parsePgUrl('postgres://u:secret@db/x'),
      (e: PgStoreError) => /PGPASSWORD or MESHCTL_PG_PASSWORD/.test(e.message) && !e.message.includes('secret'),
    );
    assert.throws(() => parsePgUrl('mysql://u@db/x'), /not supported/);
    assert.throws(() => parsePgUrl('postgres://u@db/'), /names no database/);
  });

  test('server down, database missing: one line naming cause and fix', async () => {
    const down = mkdtempSync(join(tmpdir(), 'meshctl-nopg-'));
    try {
      await assert.rejects(PgStore.open(`postgres://postgres@localhost/x?host=${encodeURIComponent(down)}`), (e: PgStoreError) => {
        assert.match(e.message, /cannot be reached .*start the server/);
        assert.ok(!e.message.includes('\n'));
        return true;
      });
    } finally {
      rmSync(down, { recursive: true, force: true });
    }
    await assert.rejects(PgStore.open(cluster!.url('no_such_db')), /database no_such_db does not exist .*createdb/);
  });

  test('two servers migrating one empty database at once apply each migration once', async () => {
    const url = await cluster!.createDatabase('racing');
    const [a, b] = await Promise.all([PgStore.open(url), PgStore.open(url)]);
    try {
      assert.equal(await a.schemaVersion(), await b.schemaVersion());
      assert.equal(await cluster!.psql('racing', 'SELECT count(*) FROM meshctl_schema'), '1\n');
    } finally {
      await a.close();
      await b.close();
    }
  });
});
