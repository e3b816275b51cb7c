// The control database on a full disk: a write fails with one line that says
// the disk is full and what to do, the database stays intact, and writes work
// again once space returns. The disk is a small tmpfs this test mounts (root).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../src/control/sqlite-store.js';
import { skipOutsideCI } from '../helpers/ci.js';

const skip = process.getuid?.() === 0 ? false : skipOutsideCI('disk-full test', 'needs root to mount a small tmpfs; run it as root');

test('a full disk under the control database: a clear one-line error, no damage, service back when space returns', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-diskfull-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir]);
  let s: SqliteStore | null = null;
  try {
    s = new SqliteStore(join(dir, 'control.db'));
    const key = { id: 'a1', secretHash: 'ff', reusable: false, ephemeral: false, createdAtMs: 1, expiresAtMs: null, usedCount: 0, user: 'bob' };
    await s.insertAuthKey(key);
    // everything the tmpfs has left, in one file
    try {
      for (let i = 0; ; i++) writeFileSync(join(dir, `filler${i}`), Buffer.alloc(64 * 1024));
    } catch {
      /* full */
    }
    // larger than the file's free pages and its kept journal together: the write must take new space
    const err = await s.insertAuthKey({ ...key, id: 'a2', secretHash: 'ee'.repeat(100_000) }).then(
      () => null,
      (e: Error) => e,
    );
    assert.ok(err, 'the write on a full disk fails');
    assert.match(err.message, /^the disk holding .* is full \(\d+ bytes free\): nothing was saved; free space there and retry$/);
    assert.ok(!err.message.includes('\n'));
    for (let i = 0; ; i++) {
      try {
        rmSync(join(dir, `filler${i}`));
      } catch {
        break;
      }
    }
    await s.insertAuthKey({ ...key, id: 'a3' });
    assert.deepEqual(
      (await s.listAuthKeys()).map((k) => k.id),
      ['a1', 'a3'],
    );
    await s.close();
    s = null;
    assert.equal(
      execFileSync('sqlite3', [join(dir, 'control.db'), 'PRAGMA integrity_check;'])
        .toString()
        .trim(),
      'ok',
    );
  } finally {
    await s?.close();
    execFileSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  }
});
