// The daemon's map kept in step with deltas (live-map.ts) against the whole map: over a random sequence of deltas
// (peers added, removed and patched: online, endpoints, names, node and disco keys, a key held twice, subnet routes,
// the exit node's approval; the packet filter, DNS and relays replaced), after each one
// - the daemon's map equals the whole map the stream's copy gives (NetmapState.toMap);
// - the engine's peer table brought in step for the delta's peers alone (EngineHost.applyPeers) equals the table a
//   second engine gets from the whole map (EngineHost.applyMap of withExitNode), across the eager limit both ways;
// - the change says the DNS zone's inputs or the packet filter changed whenever they did.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EngineHost } from '../../src/daemon/engine-host.js';
import { enginePeerStep, LiveMap } from '../../src/daemon/live-map.js';
import { withExitNode, type ExitNodePrefs } from '../../src/daemon/exit-node.js';
import { zoneInputs } from '../../src/daemon/dns-host.js';
import { NetmapState } from '../../src/netmap/delta.js';
import type { FilterRule, MapDelta, NetworkMap, PeerPatch } from '../../src/netmap/types.js';
import type { TunDevice } from '../../src/tun/device.js';
import { generatePrivateKey } from '../../src/crypto/x25519.js';
import { testKey, testNodeView } from './node-view.js';

const STEPS = 300;
/** small, so the table crosses it both ways during the sequence */
const EAGER_LIMIT = 6;

/** mulberry32: the same sequence on every run, so a failure can be replayed */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function memTun(): TunDevice {
  return {
    name: 'memtun',
    mtu: 1280,
    offload: false,
    onPackets: () => {},
    write: () => true,
    stats: {} as TunDevice['stats'],
    close: async () => {},
  };
}

const rule = (src: string): FilterRule => ({ srcIps: [src], dstPorts: [{ ip: '100.64.0.1/32', first: 0, last: 65535 }], protocols: [] });

test('a delta applied to the daemon map and the engine table alone gives the state a whole map gives', { timeout: 120_000 }, async () => {
  const rand = rng(20261203);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const keyPool = Array.from({ length: 30 }, () => testKey());
  const prefs: ExitNodePrefs = { advertiseExitNode: false, exitNode: 'node7', exitNodeAllowLanAccess: false };
  const start = (): Promise<EngineHost> =>
    EngineHost.start({
      ifname: 'unused',
      port: 0,
      mtu: 1280,
      nodePrivateKey: generatePrivateKey(),
      discoPrivateKey: generatePrivateKey(),
      logger: () => {},
      tun: memTun(),
      eagerPeerLimit: EAGER_LIMIT,
    });
  const incremental = await start();
  const whole = await start();
  try {
    const first: NetworkMap = {
      self: testNodeView(1),
      peers: [2, 3, 4, 7].map((id) => testNodeView(id, { nodeKey: keyPool[id]!, ...(id === 7 ? { exitNode: true } : {}) })),
      ipv4Prefix: '100.64.0.0/10',
      ipv6Prefix: 'fd7a:115c:a1e0::/48',
      relays: [],
      packetFilter: [rule('100.64.0.2/32')],
    };
    const state = new NetmapState();
    state.setMap(first, 1);
    const live = new LiveMap();
    live.setWhole(state.toMap());
    let exit = enginePeerStep(live, live.map!, live.setWhole(state.toMap()), prefs, undefined).exitPeer;
    incremental.applyMap(withExitNode(live.map!, prefs));
    whole.applyMap(withExitNode(state.toMap(), prefs));
    const held = new Set([2, 3, 4, 7]);
    let sawEager = 0;
    let sawLazy = 0;
    for (let step = 0; step < STEPS; step++) {
      const seq = state.seq! + 1;
      const d: MapDelta = { seq, base: state.seq! };
      const ids = [...held];
      const named = new Set<number>();
      const kind = rand();
      if (kind < 0.25 && held.size < 16) {
        let id = 2 + Math.floor(rand() * 40);
        while (held.has(id)) id = 2 + Math.floor(rand() * 40);
        d.peers = [testNodeView(id, { nodeKey: rand() < 0.15 ? pick(keyPool) : keyPool[id % keyPool.length]!, online: rand() < 0.8 })];
        named.add(id);
      } else if (kind < 0.4 && held.size > 1) {
        const id = pick(ids);
        d.removed = [id];
        named.add(id);
      } else if (held.size > 0) {
        const patches: PeerPatch[] = [];
        for (let n = 1 + Math.floor(rand() * 3); n > 0; n--) {
          const id = pick(ids);
          if (named.has(id)) continue;
          named.add(id);
          const v = state.peer(id)!;
          const r = rand();
          const own = [`100.64.0.${id}/32`, `fd7a:115c:a1e0::${id}/128`];
          if (r < 0.3) patches.push({ id, set: { online: !v.online } });
          else if (r < 0.45) patches.push({ id, set: { endpoints: [`192.0.2.${Math.floor(rand() * 250)}:41641`] } });
          else if (r < 0.55) patches.push({ id, set: { name: `n${id}x${step}` } });
          else if (r < 0.65) patches.push({ id, set: { nodeKey: pick(keyPool) } });
          else if (r < 0.72) patches.push({ id, set: { discoKey: testKey() } });
          else if (r < 0.82) {
            const route = `10.${id}.0.0/16`;
            patches.push(
              v.routes
                ? { id, set: { allowedIps: own }, unset: ['routes', 'primaryRoutes'] }
                : { id, set: { routes: [route], primaryRoutes: [route], allowedIps: [...own, route] } },
            );
          } else if (id === 7 || r < 0.87) patches.push({ id, set: { exitNode: !v.exitNode } });
          else {
            // another peer takes the exit node's name: a peer before it in id order is the exit node now
            const low = ids.filter((x) => x < 7 && !named.has(x));
            const other = low.length ? pick(low) : id;
            named.add(other);
            patches.push({ id: other, set: { name: 'node7', exitNode: rand() < 0.5 } });
          }
        }
        if (patches.length) d.patches = patches;
      }
      if (rand() < 0.1) d.packetFilter = [rule(`100.64.0.${2 + Math.floor(rand() * 40)}/32`)];
      if (rand() < 0.05) d.relays = [];
      if (rand() < 0.05)
        d.dns = rand() < 0.5 ? null : { suffix: 'mesh.internal', resolvers: ['100.100.100.100', 'fd7a:115c:a1e0::53'], routes: [], records: [] };
      const before = state.toMap();
      state.apply(d);
      for (const p of d.peers ?? []) held.add(p.id);
      for (const id of d.removed ?? []) held.delete(id);
      const after = state.toMap();

      const change = live.applyDelta(state, d);
      assert.deepEqual(live.map, after, `step ${step}: the daemon's map is the whole map`);
      if (zoneInputs(before) !== zoneInputs(after)) assert.ok(change.names, `step ${step}: a name or address changed, and the change says so`);
      if (JSON.stringify(before.packetFilter) !== JSON.stringify(after.packetFilter)) assert.ok(change.packetFilter, `step ${step}: the filter changed`);

      const stepped = enginePeerStep(live, live.map!, change, prefs, exit);
      exit = stepped.exitPeer;
      incremental.applyPeers(stepped.nodeKeys, stepped.viewOf);
      whole.applyMap(withExitNode(after, prefs));
      assert.deepEqual(incremental.tableEntries(), whole.tableEntries(), `step ${step}: the engine's table is the whole map's`);
      if (whole.tableEntries().length <= EAGER_LIMIT) sawEager++;
      else sawLazy++;
    }
    // the sequence went both sides of the eager limit and through the exit node's routes
    assert.ok(sawEager > 10 && sawLazy > 10, `eager ${sawEager}, lazy ${sawLazy}`);
  } finally {
    await incremental.stop();
    await whole.stop();
  }
});
