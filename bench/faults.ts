// `npm run faults` (root): the fault suite. Each fault runs in its own lab
// (src/lab: namespaces, NAT routers, control, two relay regions) while a paced
// TCP stream crosses the mesh, and prints one row: the fault, what meshctl
// promises, what was measured. The stream's SHA-256 is checked at both ends.
//   node dist/bench/faults.js [--only SUBSTRING] [--stop-s 30]
import { parseArgs } from 'node:util';
import { FaultLab } from './faults/lab.js';
import { DEFAULT_SCENARIO, killDaemon, natRebind, nodeDiskFull, relayLoss, roam, stopCont, type FaultRow } from './faults/scenarios.js';
import type { NatKind } from '../src/lab/topology.js';

const { values } = parseArgs({ options: { only: { type: 'string' }, 'stop-s': { type: 'string', default: '30' } } });
if (process.getuid?.() !== 0) {
  process.stderr.write('npm run faults needs root (namespaces, nftables, TUN): run it with sudo\n');
  process.exit(1);
}
const stopMs = Number(values['stop-s']) * 1000;
const o = { ...DEFAULT_SCENARIO, log: (m: string) => process.stderr.write(`  ${m}\n`) };

const plan: { name: string; kinds: NatKind[]; beforeUp?: (f: FaultLab) => Promise<unknown>; run: (f: FaultLab) => Promise<FaultRow> }[] = [
  { name: 'conntrack flush', kinds: ['easy', 'easy'], run: (f) => natRebind(f, 'flush', o) },
  { name: 'public port', kinds: ['easy', 'easy'], run: (f) => natRebind(f, 'port', o) },
  { name: 'public address', kinds: ['easy', 'easy'], run: (f) => natRebind(f, 'address', o) },
  { name: 'roaming', kinds: ['easy', 'easy'], run: (f) => roam(f, o) },
  { name: 'kill -9', kinds: ['easy', 'easy'], run: (f) => killDaemon(f, 5000, o) },
  { name: 'node disk full', kinds: ['easy', 'easy'], beforeUp: (f) => f.smallDisk(f.nodes[0]!, '4m'), run: (f) => nodeDiskFull(f, 15_000, o) },
  { name: 'relay loss', kinds: ['blocked', 'easy'], run: (f) => relayLoss(f, 20_000, 30, { ...o, rateBps: 4_000_000 }) },
  { name: 'stop control', kinds: ['easy', 'easy'], run: (f) => stopCont(f, 'control', stopMs, o) },
  { name: 'stop relay', kinds: ['easy', 'easy'], run: (f) => stopCont(f, 'relay', stopMs, o) },
  { name: 'stop peer daemon', kinds: ['easy', 'easy'], run: (f) => stopCont(f, 'peer daemon', stopMs, o) },
];

const rows: FaultRow[] = [];
for (const p of plan) {
  if (values.only && !p.name.includes(values.only)) continue;
  process.stderr.write(`${p.name}\n`);
  const f = await FaultLab.start(p.kinds, p.beforeUp && (async (x) => void (await p.beforeUp!(x))));
  try {
    rows.push(await p.run(f));
  } catch (err) {
    rows.push({ fault: p.name, promise: '', measured: `FAILED: ${(err as Error).message}`, ok: false });
  } finally {
    await f.close();
  }
}
process.stdout.write('\n| fault | promise | measured | kept |\n|---|---|---|---|\n');
for (const r of rows) process.stdout.write(`| ${r.fault} | ${r.promise} | ${r.measured} | ${r.ok ? 'yes' : 'NO'} |\n`);
process.exitCode = rows.every((r) => r.ok) ? 0 : 1;
