// A missing or empty control.db beside an existing control.key is a lost
// network, not a first start: the server refuses to start (one line naming the
// file and the way out) unless --fresh says so. A damaged database is reported
// as a database error, not as "cannot listen".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/cli/version.js';
import { ControlServer } from '../../src/control/server.js';
import { stateFiles } from '../../src/control/state-dir.js';
import { tempDir } from './helpers.js';

const bin = join(packageRoot(), 'bin', 'meshctl');
const serverIn = (dir: string, fresh = false) => new ControlServer({ host: '127.0.0.1', port: 0, stateDir: dir, fresh });

/** start() must fail: its error, or (a server that started after all is stopped) an assertion error. */
async function refusedStart(dir: string): Promise<Error> {
  const s = serverIn(dir);
  try {
    await s.start();
  } catch (err) {
    return err as Error;
  }
  await s.stop();
  assert.fail('the server started');
}

/** A state dir where a server has run once: control.key and control.db exist. */
async function usedStateDir(): Promise<string> {
  const dir = tempDir();
  const s = serverIn(dir);
  await s.start();
  await s.stop();
  assert.ok(existsSync(stateFiles(dir).controlKey) && existsSync(stateFiles(dir).db));
  return dir;
}

test('control.key without control.db: refused with the way out, and no database is created', async () => {
  const dir = await usedStateDir();
  try {
    rmSync(stateFiles(dir).db);
    const err = await refusedStart(dir);
    assert.match(err.message, /control database .*control\.db is missing, but .*control\.key exists/);
    assert.match(err.message, /restore .* from a backup, or start a new, empty network with --fresh/);
    assert.ok(!err.message.includes('\n'));
    assert.ok(!existsSync(stateFiles(dir).db), 'the refused start made no database');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an empty control.db beside control.key is refused; --fresh starts a new network on purpose', async () => {
  const dir = await usedStateDir();
  try {
    writeFileSync(stateFiles(dir).db, '');
    assert.match((await refusedStart(dir)).message, /control\.db is empty, but .*--fresh/);
    const s = serverIn(dir, true);
    await s.start();
    assert.ok(s.boundPort > 0);
    await s.stop();
    // from now on it is an ordinary database: a plain start works
    const again = serverIn(dir);
    await again.start();
    await again.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a corrupt control.db is reported as a database error; --fresh keeps it aside', async () => {
  const dir = await usedStateDir();
  try {
    writeFileSync(stateFiles(dir).db, Buffer.alloc(8192, 'garbage!'));
    // the write-ahead log a crash leaves beside the file: it belongs to the damaged file, not to the new one
    writeFileSync(`${stateFiles(dir).db}-wal`, Buffer.alloc(4096, 'wal log!'));
    const err = await refusedStart(dir);
    assert.match(err.message, /^control database .*control\.db is not a valid SQLite database \(.+\): restore it from a backup, or start afresh with --fresh/);
    assert.doesNotMatch(err.message, /listen/);
    const s = serverIn(dir, true);
    await s.start();
    await s.stop();
    // (with its journal beside it, kept as control.db.broken-TIME-journal)
    const kept = readdirSync(dir).filter((f) => f.startsWith('control.db.broken-'));
    assert.equal(kept.filter((f) => !f.endsWith('-journal') && !f.endsWith('-wal')).length, 1, 'the damaged file is kept');
    assert.equal(kept.filter((f) => f.endsWith('-wal')).length, 1, 'its write-ahead log is kept with it');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('meshctl control serve: the database errors on its stderr, and --fresh', async () => {
  const dir = await usedStateDir();
  const serve = (...extra: string[]) => ['control', 'serve', '--listen', '127.0.0.1:0', '--state-dir', dir, ...extra];
  try {
    writeFileSync(stateFiles(dir).db, Buffer.alloc(8192, 'garbage!'));
    const corrupt = spawnSync(process.execPath, [bin, ...serve()], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(corrupt.status, 1, corrupt.stderr);
    assert.match(
      corrupt.stderr,
      /^meshctl control serve: control database .*control\.db is not a valid SQLite database \(.+\): restore it from a backup, or start afresh with --fresh/,
    );
    assert.doesNotMatch(corrupt.stderr, /cannot listen/);
    assert.equal(corrupt.stderr.trim().split('\n').length, 1, 'one line');

    rmSync(stateFiles(dir).db);
    const missing = spawnSync(process.execPath, [bin, ...serve()], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(missing.status, 1, missing.stderr);
    assert.match(missing.stderr, /control\.db is missing, .* with --fresh/);

    const child = spawn(process.execPath, [bin, ...serve('--fresh')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      const t0 = Date.now();
      while (!/control server listening/.test(err)) {
        if (Date.now() - t0 > 20_000 || child.exitCode !== null) throw new Error(`serve --fresh did not start: ${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
