// What a join's database work costs the control server's event loop under each
// locking and journal mode of node-sqlite3-wasm (which locks by making and
// removing a directory, and runs every statement synchronously): a join's
// statements (three reads outside a transaction, a transaction with a read and
// an update, a read after it) on a 5,000-row table in a file in a fresh temp dir,
// `synchronous = FULL` throughout. Prints wall time (the event loop standing
// still) and CPU per join for: the lock per statement with the journal made and
// deleted per transaction (SQLite's defaults), the lock kept (EXCLUSIVE), and
// the lock kept with the journal kept (PERSIST, what the store uses); each mode
// twice, interleaved.
//   node dist/bench/sqlite-locking.js [--joins 300]
import sqlite from 'node-sqlite3-wasm';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { intArg, loadAverage } from './load-network.js';

const joins = intArg('--joins', 300, 10, 100_000);
const MODES = [
  { name: 'lock per statement, journal deleted', pragmas: 'PRAGMA journal_mode = DELETE;' },
  { name: 'lock kept, journal deleted', pragmas: 'PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = DELETE;' },
  { name: 'lock kept, journal kept', pragmas: 'PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = PERSIST;' },
];

function run(pragmas: string): { wallMs: number; cpuMs: number } {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-sqlite-locking-'));
  const db = new sqlite.Database(join(dir, 'x.db'));
  try {
    db.exec(`${pragmas} PRAGMA synchronous = FULL;`);
    db.exec('CREATE TABLE n (id INTEGER PRIMARY KEY, k TEXT UNIQUE, v TEXT)');
    db.exec('BEGIN');
    for (let i = 0; i < 5000; i++) db.run('INSERT INTO n (k, v) VALUES (?, ?)', [`k${i}`, 'x'.repeat(200)]);
    db.exec('COMMIT');
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < joins; i++) {
      for (let r = 0; r < 3; r++) db.get('SELECT * FROM n WHERE k = ?', `k${i}`);
      db.exec('BEGIN IMMEDIATE');
      db.get('SELECT * FROM n WHERE k = ?', `k${i}`);
      db.run('UPDATE n SET v = ? WHERE id = ?', [`y${i}`, i + 1]);
      db.exec('COMMIT');
      db.get('SELECT * FROM n WHERE id = ?', i + 1);
    }
    const c = process.cpuUsage(c0);
    return { wallMs: (performance.now() - t0) / joins, cpuMs: (c.user + c.system) / 1000 / joins };
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`sqlite-locking: ${joins} joins per mode in ${tmpdir()}; load average ${loadAverage()}`);
// each mode twice, interleaved: the first round also warms the JIT up
for (let round = 1; round <= 2; round++) {
  for (const m of MODES) {
    const r = run(m.pragmas);
    console.log(`  round ${round}, ${m.name}: ${r.wallMs.toFixed(2)} ms of event loop, ${r.cpuMs.toFixed(2)} ms CPU per join`);
  }
}
console.log(`load average ${loadAverage()}`);
