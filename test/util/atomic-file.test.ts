// writeFileAtomic on a full file system: a tiny tmpfs mounted by the test
// (root only) runs out of space part-way through the write, and the old file
// must be intact with no temporary file left beside it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../src/util/atomic-file.js';
import { tinyTmpfs, tmpfsSkipReason } from './tmpfs.js';

test('a write that runs out of space throws, keeps the old file and leaves no temporary file', { skip: tmpfsSkipReason() }, () => {
  const fs = tinyTmpfs(64);
  try {
    const f = join(fs.dir, 'state.json');
    writeFileAtomic(f, 'old\n');
    assert.throws(
      () => writeFileAtomic(f, Buffer.alloc(256 * 1024, 0x61)),
      (err: NodeJS.ErrnoException) => err.code === 'ENOSPC',
    );
    // the kernel takes part of the write and fails the rest: the old file must not be replaced by a torn one
    assert.equal(readFileSync(f, 'utf8'), 'old\n');
    assert.deepEqual(readdirSync(fs.dir), ['state.json']);
    // and the space is free again: a small write succeeds
    writeFileAtomic(f, 'new\n');
    assert.equal(readFileSync(f, 'utf8'), 'new\n');
    assert.deepEqual(readdirSync(fs.dir), ['state.json']);
  } finally {
    fs.cleanup();
  }
});
