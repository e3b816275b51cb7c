// resolv.conf under systemd's ProtectSystem=strict with ReadWritePaths=/etc/resolv.conf:
// /etc is a read-only mount and the file alone a writable bind mount over it. No
// temporary file can be made beside it (EROFS), so it is rewritten in place.
// Built here the way systemd builds it: a read-only bind mount of a directory and
// a writable bind mount of the one file inside it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { replaceFile } from '../../src/osdns/host-file.js';
import { tmpfsSkipReason } from '../util/tmpfs.js';

test('a read-only directory with a writable resolv.conf bind-mounted in it: the file is rewritten in place', { skip: tmpfsSkipReason() }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-roetc-'));
  const etc = join(dir, 'etc');
  const file = join(etc, 'resolv.conf');
  mkdirSync(etc);
  writeFileSync(file, 'nameserver 192.0.2.1\n', { mode: 0o644 });
  const mounts: string[] = [];
  try {
    execFileSync('mount', ['--bind', etc, etc]);
    mounts.unshift(etc);
    execFileSync('mount', ['-o', 'remount,bind,ro', etc]);
    execFileSync('mount', ['--bind', file, file]);
    mounts.unshift(file);
    execFileSync('mount', ['-o', 'remount,bind,rw', file]);
    assert.throws(() => writeFileSync(join(etc, 'other'), 'x'), /EROFS/, 'the directory is read-only');
    assert.equal(replaceFile(file, Buffer.from('nameserver 100.100.100.100\n'), { mode: 0o644 }), 'in-place');
    assert.equal(readFileSync(file, 'utf8'), 'nameserver 100.100.100.100\n');
  } finally {
    for (const m of mounts) execFileSync('umount', [m]);
    rmSync(dir, { recursive: true, force: true });
  }
});
