// A tiny tmpfs for tests of full-disk behaviour (ENOSPC): root mounts it;
// elsewhere the test skips loudly, and in CI (which runs as root) a missing
// capability fails instead.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { skipOutsideCI } from '../helpers/ci.js';

export function tmpfsSkipReason(): string | false {
  if (process.getuid?.() === 0) return false;
  return skipOutsideCI('the ENOSPC test', 'needs root to mount a tmpfs; run as root to include it');
}

/** A fresh tmpfs of `kib` KiB, unmounted and removed by the returned function. */
export function tinyTmpfs(kib: number): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-enospc-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${kib}k,mode=0700`, 'tmpfs', dir]);
  return {
    dir,
    cleanup: () => {
      execFileSync('umount', [dir]);
      rmdirSync(dir);
    },
  };
}
