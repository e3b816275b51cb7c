// The cost of one broadcast's read of the network at N nodes, without
// streams: N nodes seeded under the control-load bench's policy (group:eng
// reaches tag:server, admins reach all, autogroup:self), then a run of single
// changes (an endpoint, an online flip, a join, a leave), each followed by
// `registry.snapshot()`; prints the median and p90 ms per kind.
//   node dist/bench/snapshot-cost.js [--nodes 5000] [--rounds 20]
import { rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { ipv6Prefix } from '../src/control/addresses.js';
import { createAuthKey } from '../src/control/authkeys.js';
import { setPolicy } from '../src/control/policy.js';
import { Registry } from '../src/control/registry.js';
import { SqliteStore } from '../src/control/sqlite-store.js';
import type { NodeRecord, StoreTx } from '../src/control/store.js';
import { insertTestNode, scratchDir } from '../test/helpers/control-seed.js';
import { intArg, LoadNetwork, userName } from './load-network.js';

const nodes = intArg('--nodes', 5000, 8, 1_000_000);
const rounds = intArg('--rounds', 20, 1, 100_000);
const network = new LoadNetwork(nodes);
const { users, eng } = network;
const policy = network.policy();

const dir = scratchDir('meshctl-snapshot-cost-');
const raw = new SqliteStore(join(dir, 'control.db'));
try {
  const authKeyId = (await createAuthKey(raw, { reusable: true, ephemeral: false, expiryMs: null })).record.id;
  await ipv6Prefix(raw);
  let n = 0;
  const record = async (tx: StoreTx, i: number, u: string | null): Promise<NodeRecord> =>
    insertTestNode(tx, i, { authKeyId, version: 'bench', user: i % 20 === 19 ? null : u, tags: i % 20 === 19 ? ['tag:server'] : [] });
  await raw.transaction(async (tx) => {
    for (; n < nodes; n++) await record(tx, n, userName(n % users));
  });
  const reg = await Registry.open(raw, { keyExpiryMs: null });
  await setPolicy(reg, policy);
  const online = new Set((await raw.listNodes()).map((r) => r.id));
  const isOnline = (id: number): boolean => online.has(id);
  reg.snapshot(isOnline, []);
  const times: Record<string, number[]> = { endpoint: [], online: [], join: [], leave: [] };
  const ids = [...online];
  for (let r = 0; r < rounds; r++) {
    for (const kind of Object.keys(times)) {
      const id = ids[(r * 7919) % ids.length]!;
      if (kind === 'endpoint') await reg.store.updateNode(id, { endpoints: [`203.0.113.${r % 250}:${1000 + r}`] });
      else if (kind === 'online') online.delete(id);
      else if (kind === 'join') online.add((await record(reg.store, n++, userName(eng[0]!))).id);
      else await reg.store.deleteNode(ids.pop()!);
      const t0 = performance.now();
      reg.snapshot(isOnline, []);
      times[kind]!.push(performance.now() - t0);
      if (kind === 'online') online.add(id);
    }
  }
  const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
  const line = Object.entries(times)
    .map(([k, xs]) => `${k} p50 ${pct(xs, 50).toFixed(1)} ms p90 ${pct(xs, 90).toFixed(1)} ms`)
    .join('; ');
  console.log(
    `snapshot-cost: ${nodes} nodes, ${rounds} rounds: ${line}; load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
} finally {
  await raw.close();
  rmSync(dir, { recursive: true, force: true });
}
