// The meshctl binary run as a user runs it, without blocking this process (a
// server under test may run in it), and the one-line check of its errors.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../src/cli/version.js';

const bin = join(packageRoot(), 'bin', 'meshctl');

/** Runs `meshctl ARGS…` with no daemon socket set; resolves with its exit code and output. */
export function runCli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, MESHCTL_SOCKET: '' } }, (err, out, errText) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out, err: errText });
    });
  });
}

/** Asserts that `s` is one line of text. */
export const oneLine = (s: string): void => assert.equal(s.trim().split('\n').length, 1, s);
