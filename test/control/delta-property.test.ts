// Deltas give the same map as a whole map: a seeded random run of network
// changes (joins, leaves, endpoint and relay changes, online flips, renames,
// tag changes, key expiry, devices, policies that hide and unhide peers),
// each followed by a broadcast, where every node's stream is served as the
// server serves it (its first whole map, then deltas through the node's
// strict parser and its copy of the map) and must then hold exactly the map
// control builds for it from scratch. Some streams take only every third
// broadcast (a stream that fell behind: one delta covers several changes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { deltaLine, fullMapLine, type DeltaSent } from '../../src/control/deltas.js';
import { MAX_CHANGE_LOG_ENTRIES } from '../../src/control/map-changes.js';
import { addDevice, removeDevice } from '../../src/control/devices.js';
import { setPolicy } from '../../src/control/policy.js';
import { SqliteStore } from '../../src/control/sqlite-store.js';
import { NetmapState } from '../../src/netmap/delta.js';
import { parseMapLine, parseNetworkMap } from '../../src/netmap/parse.js';
import type { NetworkMap, RelayRegion } from '../../src/netmap/types.js';
import { insertTestNode, openTestRegistry, prng, randomKeyText, scratchDir } from '../helpers/control-seed.js';

const USERS = ['alice', 'bob', 'carol'];
const TAGS = [[], ['tag:server'], ['tag:nas']] as const;
const POLICIES = [
  // each user's nodes see each other; admins (alice) see everything
  {
    acls: [
      { action: 'accept', src: ['autogroup:member'], dst: ['autogroup:self:*'] },
      { action: 'accept', src: ['alice'], dst: ['*:*'] },
    ],
  },
  // bob reaches the servers; tagged nodes are hidden from everyone else
  { tagOwners: { 'tag:server': ['alice'], 'tag:nas': ['alice'] }, acls: [{ action: 'accept', src: ['bob'], dst: ['tag:server:22'] }] },
  { tagOwners: { 'tag:server': ['alice'], 'tag:nas': ['alice'] }, acls: [{ action: 'accept', src: ['*'], dst: ['*:*'] }] },
  // a group reaches the servers: each join or leave in it changes the servers' rule sources (a filter patch)
  {
    groups: { 'group:eng': ['alice', 'bob'] },
    tagOwners: { 'tag:server': ['alice'], 'tag:nas': ['alice'] },
    acls: [
      { action: 'accept', src: ['group:eng'], dst: ['tag:server:22,443'] },
      { action: 'accept', src: ['group:eng', 'tag:nas'], dst: ['tag:server:80'] },
      { action: 'accept', src: ['carol'], dst: ['autogroup:self:*'] },
    ],
  },
];
const RELAYS: RelayRegion[][] = [[], [{ code: 'r1', url: 'https://relay.example:443', stunPort: 3478 }]];

interface Client {
  id: number;
  state: NetmapState;
  held: DeltaSent | null;
  /** takes only every `every`-th broadcast */
  every: number;
  /** applies packet-filter patches (else a changed filter comes whole) */
  patches: boolean;
}

const canon = (m: NetworkMap): NetworkMap => parseNetworkMap(JSON.parse(JSON.stringify(m)));

for (const seed of [1, 2, 3]) {
  test(`deltas applied by the node give the whole map at every step (seed ${seed}, 300 steps)`, async () => {
    const rnd = prng(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    // the store on tmpfs where there is one: hundreds of small commits, each an fsync on a disk
    const dir = scratchDir('meshctl-delta-');
    const raw = new SqliteStore(join(dir, 'control.db'));
    try {
      const { reg, authKeyId } = await openTestRegistry(raw);
      // every write through the registry's store, so its cache (what snapshots read) follows
      const store = reg.store;
      const online = new Set<number>();
      let relays = RELAYS[0]!;
      let n = 0;
      const joinNode = async (): Promise<void> => {
        const i = n++;
        const t = pick(TAGS);
        const rec = await insertTestNode(store, i, {
          authKeyId,
          endpoints: [`198.18.0.${i % 250}:41641`],
          createdAtMs: Date.now(),
          user: t.length ? null : pick(USERS),
          tags: [...t],
        });
        if (rnd() < 0.7) online.add(rec.id);
      };
      for (let i = 0; i < 12; i++) await joinNode();
      const clients = new Map<number, Client>();
      let deltas = 0;
      let fulls = 0;
      let filterPatches = 0;
      for (let step = 0; step < 300; step++) {
        const nodes = await store.listNodes();
        const some = (): (typeof nodes)[0] | undefined => (nodes.length ? pick(nodes) : undefined);
        const r = rnd();
        const node = some();
        const what =
          r < 0.12 || !node
            ? 'join'
            : r < 0.2
              ? 'leave'
              : r < 0.45
                ? 'endpoints'
                : r < 0.6
                  ? 'online'
                  : r < 0.67
                    ? 'rename'
                    : r < 0.73
                      ? 'tags'
                      : r < 0.78
                        ? 'expire'
                        : r < 0.85
                          ? 'policy'
                          : r < 0.88
                            ? 'relays'
                            : r < 0.92
                              ? 'device'
                              : 'relay-home';
        if (what === 'join') await joinNode();
        else if (what === 'leave') await store.deleteNode(node!.id);
        else if (what === 'endpoints') await store.updateNode(node!.id, { endpoints: [`203.0.113.${Math.floor(rnd() * 250)}:${1000 + step}`] });
        else if (what === 'online') {
          if (online.has(node!.id)) online.delete(node!.id);
          else online.add(node!.id);
          await store.updateNode(node!.id, { lastSeenMs: 1_800_000_000_000 + step * 1000 });
        } else if (what === 'rename') await store.updateNode(node!.id, { hostname: `r${step}` });
        else if (what === 'tags') {
          const t = pick(TAGS);
          await store.updateNode(node!.id, { tags: [...t], user: t.length ? null : pick(USERS) });
        } else if (what === 'expire') await store.updateNode(node!.id, { keyExpiresAtMs: node!.keyExpiresAtMs === null ? 1 : null });
        else if (what === 'policy') await setPolicy(reg, JSON.stringify(pick(POLICIES)));
        else if (what === 'relays') relays = pick(RELAYS);
        else if (what === 'device') {
          const devices = await store.listDevices();
          if (devices.length && rnd() < 0.5) await removeDevice(reg, String(devices[0]!.id));
          else if (!reg.isExpired(node!)) {
            try {
              await addDevice(reg, `d${step}`, String(node!.id), randomKeyText());
            } catch {
              // a gateway that cannot take a device now (pending, expired): the step changes nothing
            }
          }
        } else await store.updateNode(node!.id, { homeRelay: rnd() < 0.5 ? null : 'r1' });

        const snap = reg.snapshot((id) => online.has(id), relays);
        for (const id of [...clients.keys()]) if (!snap.node(id)) clients.delete(id);
        for (const id of snap.ids()) {
          if (!clients.has(id)) clients.set(id, { id, state: new NetmapState(), held: null, every: rnd() < 0.25 ? 3 : 1, patches: rnd() < 0.75 });
        }
        for (const c of clients.values()) {
          if (c.held !== null && step % c.every !== 0) continue;
          const self = snap.node(c.id)!;
          const out = c.held === null ? fullMapLine(snap, self) : deltaLine(snap, reg.changes, self, c.held, { filterPatches: c.patches });
          c.held = out.sent;
          if (out.line !== null) {
            const line = parseMapLine(JSON.parse(out.line), c.state.mesh);
            assert.ok(line);
            if (line.type === 'delta') {
              deltas++;
              if (line.delta.filterPatch) filterPatches++;
              assert.ok(c.patches || !line.delta.filterPatch, 'a filter patch went to a node that did not ask for them');
              c.state.apply(line.delta);
            } else if (line.type === 'map') {
              fulls++;
              c.state.setMap(line.map, line.seq ?? null);
            }
          }
          assert.deepEqual(c.state.toMap(), canon(snap.mapFor(self)), `step ${step} (${what}), node ${c.id}`);
        }
      }
      // the run exercised deltas, not only whole maps
      assert.ok(deltas > fulls, `${deltas} deltas, ${fulls} whole maps`);
      // and filter changes went as patches
      assert.ok(filterPatches > 0, `${filterPatches} filter patches`);
    } finally {
      await raw.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('a stream further behind than the change log keeps gets a whole map, which gives the same map', async () => {
  const dir = scratchDir('meshctl-delta-');
  const raw = new SqliteStore(join(dir, 'control.db'));
  try {
    const { reg, authKeyId } = await openTestRegistry(raw);
    const store = reg.store;
    const ids: number[] = [];
    for (const i of [0, 1]) ids.push((await insertTestNode(store, i, { authKeyId, endpoints: [], user: 'alice' })).id);
    let snap = reg.snapshot(() => true, []);
    const self = (): ReturnType<typeof snap.node> & object => snap.node(ids[0]!)!;
    const first = fullMapLine(snap, self());
    const state = new NetmapState();
    const m = parseMapLine(JSON.parse(first.line!))!;
    assert.equal(m.type, 'map');
    state.setMap((m as { map: NetworkMap }).map, (m as { seq: number }).seq);
    // one change more than the log keeps, none of them served to this stream
    for (let i = 0; i <= MAX_CHANGE_LOG_ENTRIES; i++) {
      await store.updateNode(ids[1]!, { endpoints: [`192.0.2.1:${1000 + i}`] });
      snap = reg.snapshot(() => true, []);
    }
    const out = deltaLine(snap, reg.changes, self(), first.sent);
    assert.equal(out.full, true);
    const line = parseMapLine(JSON.parse(out.line!), state.mesh)!;
    assert.equal(line.type, 'map');
    state.setMap((line as { map: NetworkMap }).map, (line as { seq: number }).seq);
    assert.deepEqual(state.toMap(), canon(snap.mapFor(self())));
    // and from there, deltas again
    await store.updateNode(ids[1]!, { endpoints: ['192.0.2.2:2'] });
    snap = reg.snapshot(() => true, []);
    const next = deltaLine(snap, reg.changes, self(), out.sent);
    assert.equal(next.full, false);
    assert.ok(next.line!.length < 300, next.line!);
  } finally {
    await raw.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
