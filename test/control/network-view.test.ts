// The network view kept between snapshots (network-view.ts): a change
// rebuilds the pieces of the nodes it touched and no other, and over a seeded
// random run of changes every map built from the kept view is exactly the map
// a registry opened afresh on the same store builds (the view rebuilt from the
// store, as on a start or a replica's wake-up).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { addDevice } from '../../src/control/devices.js';
import { setPolicy } from '../../src/control/policy.js';
import { Registry } from '../../src/control/registry.js';
import { SqliteStore } from '../../src/control/sqlite-store.js';
import type { ControlStore } from '../../src/control/store.js';
import { insertTestNode, openTestRegistry, prng, randomKeyText, scratchDir } from '../helpers/control-seed.js';

const POLICY = {
  groups: { 'group:eng': ['alice', 'bob'] },
  tagOwners: { 'tag:server': ['alice'] },
  acls: [
    { action: 'accept', src: ['group:eng'], dst: ['tag:server:22'] },
    { action: 'accept', src: ['alice'], dst: ['*:*'] },
    { action: 'accept', src: ['autogroup:member'], dst: ['autogroup:self:*'] },
  ],
};

async function withStore(f: (raw: SqliteStore, reg: Registry, join: (i: number, user: string | null) => Promise<number>) => Promise<void>): Promise<void> {
  const dir = scratchDir('meshctl-view-');
  const raw = new SqliteStore(join(dir, 'control.db'));
  try {
    const { reg, authKeyId } = await openTestRegistry(raw);
    const store = reg.store;
    const joinNode = async (i: number, user: string | null): Promise<number> =>
      (await insertTestNode(store, i, { authKeyId, user, tags: user === null ? ['tag:server'] : [] })).id;
    await f(raw, reg, joinNode);
  } finally {
    await raw.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('one endpoint change rebuilds the piece of that node only; a whole re-read rebuilds every one', async () => {
  await withStore(async (_raw, reg, joinNode) => {
    const ids: number[] = [];
    for (let i = 0; i < 60; i++) ids.push(await joinNode(i, i % 10 === 9 ? null : ['alice', 'bob', 'carol'][i % 3]!));
    await setPolicy(reg, JSON.stringify(POLICY));
    const first = reg.snapshot(() => true, []);
    assert.equal(reg.netView.rebuilt, 60);
    await reg.store.updateNode(ids[5]!, { endpoints: ['203.0.113.9:1'] });
    const second = reg.snapshot(() => true, []);
    assert.equal(reg.netView.rebuilt, 1);
    // the untouched nodes' pieces are the very same objects: nothing was shown or serialized again
    assert.equal(second.peer(ids[6]!), first.peer(ids[6]!));
    assert.notEqual(second.peer(ids[5]!), first.peer(ids[5]!));
    assert.deepEqual(second.peer(ids[5]!)!.view.endpoints, ['203.0.113.9:1']);
    // an online flip is a change to that node's view only
    reg.snapshot((id) => id !== ids[7], []);
    assert.equal(reg.netView.rebuilt, 1);
    // another server's change on a shared database: everything is read again, every piece rebuilt from the store
    await reg.refresh();
    reg.snapshot((id) => id !== ids[7], []);
    assert.equal(reg.netView.rebuilt, 60);
  });
});

for (const seed of [11, 12]) {
  test(`maps from the kept view equal maps from a view rebuilt from the store (seed ${seed}, 120 steps)`, async () => {
    await withStore(async (raw, reg, joinNode) => {
      const rnd = prng(seed);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
      let n = 0;
      for (; n < 20; n++) await joinNode(n, pick(['alice', 'bob', 'carol', null]));
      await setPolicy(reg, JSON.stringify(POLICY));
      const offline = new Set<number>();
      const store: ControlStore = reg.store;
      for (let step = 0; step < 120; step++) {
        const nodes = reg.nodes();
        const node = pick(nodes);
        const r = rnd();
        let what = '';
        if (r < 0.15) (what = 'join'), await joinNode(n++, pick(['alice', 'bob', 'carol', null]));
        else if (r < 0.25) (what = 'leave'), await store.deleteNode(node.id);
        else if (r < 0.45) (what = 'endpoints'), await store.updateNode(node.id, { endpoints: [`203.0.113.${step % 250}:${1000 + step}`] });
        else if (r < 0.6) {
          what = 'online';
          if (offline.has(node.id)) offline.delete(node.id);
          else offline.add(node.id);
        } else if (r < 0.68) (what = 'tags'), await store.updateNode(node.id, { user: 'bob', tags: [] });
        else if (r < 0.74) (what = 'expire'), await store.updateNode(node.id, { keyExpiresAtMs: node.keyExpiresAtMs === null ? 1 : null });
        else if (r < 0.84) {
          what = 'route';
          // a prefix of its own: a fresh registry's primary election (which has no history) picks the same router
          const prefix = `10.${node.id % 250}.0.0/16`;
          await store.updateNode(node.id, { advertisedRoutes: [prefix], advertisedExit: rnd() < 0.5 });
          await store.approveRoute({ nodeId: node.id, prefix });
        } else if (r < 0.9) {
          what = 'device';
          try {
            await addDevice(reg, `d${step}`, String(node.id), randomKeyText());
          } catch {
            // a gateway that cannot take a device now: the step changes nothing
          }
        } else (what = 'rename'), await store.updateNode(node.id, { hostname: `r${step}` });
        const online = (id: number): boolean => !offline.has(id);
        const kept = reg.snapshot(online, []);
        const fresh = (await Registry.open(raw, { keyExpiryMs: null })).snapshot(online, []);
        assert.deepEqual([...kept.ids()], [...fresh.ids()], `step ${step} (${what})`);
        for (const id of kept.ids()) assert.equal(kept.lineFor(kept.node(id)!), fresh.lineFor(fresh.node(id)!), `step ${step} (${what}), node ${id}`);
      }
    });
  });
}
