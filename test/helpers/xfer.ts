// Checks both ends of a tcp-xfer.js run (test/integration/fixtures): both exit
// 0, both print a result line, and both moved exactly the bytes asked for with
// the same SHA-256. A side that printed nothing fails here, with what it said.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { packageRoot } from '../../src/cli/version.js';
import type { RunResult } from './netns.js';

/** The built tcp-xfer fixture, to run with `node` on either end. */
export const XFER_FIXTURE = join(packageRoot(), 'dist', 'test', 'integration', 'fixtures', 'tcp-xfer.js');

export interface XferResult {
  bytes: number;
  sha256: string;
  /** the server's longest gap without progress */
  maxGapMs: number;
}

function resultLine(who: string, out: string, err: string): { bytes: number; sha256: string; maxGapMs?: number } {
  const line = out.split('\n').find((l) => l.includes('sha256'));
  assert.ok(line, `the ${who} printed no result: stdout ${JSON.stringify(out.slice(-500))}, stderr ${JSON.stringify(err.slice(-500))}`);
  const r = JSON.parse(line) as { bytes?: unknown; sha256?: unknown; maxGapMs?: unknown };
  assert.equal(typeof r.bytes, 'number', `${who}: ${line}`);
  assert.match(String(r.sha256), /^[0-9a-f]{64}$/, `${who}: ${line}`);
  return r as { bytes: number; sha256: string; maxGapMs?: number };
}

export function checkXfer(bytes: number, client: RunResult, server: { code: number | null; out: string; err: string }): XferResult {
  assert.equal(client.code, 0, `the client failed: ${client.stderr.slice(-500)}`);
  assert.equal(server.code, 0, `the server failed or did not finish: ${server.err.slice(-500)}`);
  const sent = resultLine('client', client.stdout, client.stderr);
  const got = resultLine('server', server.out, server.err);
  assert.equal(sent.bytes, bytes, 'bytes the client sent');
  assert.equal(got.bytes, bytes, 'bytes the server received');
  assert.equal(got.sha256, sent.sha256, 'the received data is what was sent');
  return { bytes: got.bytes, sha256: got.sha256, maxGapMs: got.maxGapMs ?? 0 };
}

/** Resolves with the child's exit code once it exits, or null if `ms` pass first. */
export function exitWithin(p: import('node:child_process').ChildProcess, ms: number): Promise<number | null> {
  if (p.exitCode !== null) return Promise.resolve(p.exitCode);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(null), ms);
    p.once('exit', (code) => (clearTimeout(t), resolve(code)));
  });
}
