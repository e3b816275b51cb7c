// What a map stream's open costs the control server in its SQLite store, with
// the store's real code: the reads and the transaction handleMap makes (two
// reads of the node by key, then one transaction: the node read again, the
// request's nonce remembered, the node's endpoints, disco key, last seen and
// `connected` written; then the registry's read of the node), on a file of
// 5,000 nodes. Joins arrive C at a time (C streams opened in one turn of the
// event loop); each batch is awaited before the next. Prints per join: the
// event loop's busy time (performance.eventLoopUtilization: the store is
// synchronous underneath, so fsyncs count there; a group's commit window is
// idle time, not busy), wall time, CPU, and SQLite's fsyncs (counted where
// node-sqlite3-wasm calls fs.fsyncSync) and their wall time.
// --store PATH runs another build's sqlite-store.js (the A of an A/B).
//   node dist/bench/store-commit.js [--joins 600] [--concurrency 1,4,16] [--store PATH]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { intArg, loadAverage } from './load-network.js';
import type { ControlStore } from '../src/control/store.js';
import { storeNode } from '../test/helpers/store-node.js';
import { countFsyncs } from './fsync-count.js';

const joins = intArg('--joins', 600, 10, 100_000);
const cArg = process.argv.indexOf('--concurrency');
const concurrencies = (cArg > 0 ? process.argv[cArg + 1]! : '1,4,16').split(',').map((s) => Math.max(1, Math.min(1000, Number(s) || 1)));
const sArg = process.argv.indexOf('--store');
const storeModule = sArg > 0 ? pathToFileURL(resolve(process.argv[sArg + 1]!)).href : '../src/control/sqlite-store.js';
const { SqliteStore } = (await import(storeModule)) as { SqliteStore: new (path: string) => ControlStore };
const NODES = 5000;

const fsyncs = countFsyncs();

const node = storeNode;

async function run(c: number): Promise<{ busyMs: number; wallMs: number; cpuMs: number; fsyncs: number; fsyncMs: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-store-commit-'));
  const s = new SqliteStore(join(dir, 'control.db'));
  try {
    await s.transaction(async (tx) => {
      for (let i = 0; i < NODES; i++) await tx.insertNode(node(i));
    });
    const ids = new Map((await s.listNodes()).map((n) => [n.nodeKey, n.id]));
    const open = async (i: number): Promise<void> => {
      const key = `nk${i % NODES}`;
      await s.getNodeByKey(key);
      await s.getNodeByKey(key);
      await s.transaction(async (tx) => {
        const n = await tx.getNodeByKey(key);
        await tx.rememberNonce(key, `nonce${i}`, Date.now() + 60_000, Date.now(), { total: 1_000_000, perNodeKey: 1000 });
        await tx.updateNode(n!.id, { lastSeenMs: Date.now(), endpoints: [`198.18.0.${i & 255}:41641`], discoKey: `dk${i}`, connected: true });
      });
      await s.getNode(ids.get(key)!);
    };
    const f0 = { ...fsyncs };
    const c0 = process.cpuUsage();
    const e0 = performance.eventLoopUtilization();
    const t0 = performance.now();
    for (let i = 0; i < joins; i += c) await Promise.all(Array.from({ length: Math.min(c, joins - i) }, (_, k) => open(i + k)));
    const cpu = process.cpuUsage(c0);
    const elu = performance.eventLoopUtilization(e0);
    return {
      busyMs: elu.active / joins,
      wallMs: (performance.now() - t0) / joins,
      cpuMs: (cpu.user + cpu.system) / 1000 / joins,
      fsyncs: (fsyncs.count - f0.count) / joins,
      fsyncMs: (fsyncs.ms - f0.ms) / joins,
    };
  } finally {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`store-commit: ${joins} joins per run, ${NODES} nodes, store ${storeModule} in ${tmpdir()}; load average ${loadAverage()}`);
// each concurrency twice, interleaved: the first round also warms the JIT up
for (let round = 1; round <= 2; round++) {
  for (const c of concurrencies) {
    const r = await run(c);
    console.log(
      `  round ${round}, ${c} at once: event loop busy ${r.busyMs.toFixed(2)} ms, wall ${r.wallMs.toFixed(2)} ms, ${r.cpuMs.toFixed(2)} ms CPU, ` +
        `${r.fsyncs.toFixed(2)} fsyncs (${r.fsyncMs.toFixed(2)} ms) per join`,
    );
  }
}
console.log(`load average ${loadAverage()}`);
