// The SQLite file's lock is taken once at open and kept until close (not taken
// and dropped around every statement); a second opener is refused with the
// holder named; a lock left by a process that was killed is cleared at the
// next open, with every committed write still there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DatabaseError, SqliteStore } from '../../src/control/sqlite-store.js';

const storeModule = fileURLToPath(new URL('../../src/control/sqlite-store.js', import.meta.url));

test('the lock is held from open to close, and a second opener is refused naming the holder', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-dblock-'));
  try {
    const db = join(dir, 'control.db');
    const s = new SqliteStore(db);
    await s.setMeta('k', 'v');
    assert.ok(existsSync(`${db}.lock`), 'the lock is kept between statements');
    assert.throws(
      () => new SqliteStore(db),
      (err: Error) => err instanceof DatabaseError && err.kind === 'in-use' && err.message.includes(`in use by process ${process.pid}`),
    );
    assert.equal(await s.getMeta('k'), 'v', 'the refused opener left the holder working');
    await s.close();
    assert.ok(!existsSync(`${db}.lock`), 'closing lets the lock go');
    const again = new SqliteStore(db);
    assert.equal(await again.getMeta('k'), 'v');
    await again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a lock left by a killed process is cleared at the next open, and what it committed is there', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-dblock-'));
  try {
    const db = join(dir, 'control.db');
    // a process that opens the store, commits a write, says so and then waits to be killed
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { SqliteStore } = await import(${JSON.stringify(storeModule)});
         const s = new SqliteStore(${JSON.stringify(db)});
         await s.setMeta('written', 'before the kill');
         process.stdout.write('ready\\n');
         setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      child.once('exit', (code) => reject(new Error(`the child exited (${code}) before it was ready`)));
    });
    assert.ok(existsSync(`${db}.lock`), 'the child holds the lock');
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    assert.ok(existsSync(`${db}.lock`), 'the killed process left its lock behind');
    const s = new SqliteStore(db, { mustExist: true });
    assert.equal(await s.getMeta('written'), 'before the kill');
    await s.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
