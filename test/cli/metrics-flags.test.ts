// --metrics-listen on the command line: `daemon`'s lean parser takes it (and
// --metrics-allow-remote); every server command refuses a non-loopback address
// without --metrics-allow-remote, and a bad address, with one usage line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { leanDaemonArgs } from '../../src/cli/daemon-entry.js';
import { oneLine, runCli } from '../helpers/cli-run.js';

test('the lean daemon parser takes --metrics-listen and --metrics-allow-remote, and leaves a bad use to the full CLI', () => {
  assert.deepEqual(leanDaemonArgs(['daemon', '--metrics-listen', '127.0.0.1:9101'], {})?.metricsListen, { host: '127.0.0.1', port: 9101 });
  assert.deepEqual(leanDaemonArgs(['daemon', '--metrics-listen=[::1]:9101'], {})?.metricsListen, { host: '::1', port: 9101 });
  assert.deepEqual(leanDaemonArgs(['daemon', '--metrics-listen', '10.0.0.1:9101', '--metrics-allow-remote'], {})?.metricsListen, {
    host: '10.0.0.1',
    port: 9101,
  });
  assert.equal(leanDaemonArgs(['daemon', '--metrics-listen', '10.0.0.1:9101'], {}), null, 'non-loopback without the flag: the full CLI explains');
  assert.equal(leanDaemonArgs(['daemon', '--metrics-allow-remote'], {}), null);
  assert.equal(leanDaemonArgs(['daemon', '--metrics-listen', 'localhost:9101'], {}), null);
  assert.equal(leanDaemonArgs(['--metrics-allow-remote', 'daemon'], {}), null, 'a daemon flag before the command');
});

test('each server command refuses a non-loopback --metrics-listen without --metrics-allow-remote, before it starts', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-metrics-cli-'));
  try {
    for (const args of [
      ['control', 'serve', '--listen', '127.0.0.1:0', '--state-dir', join(dir, 'c')],
      ['relay', 'serve', '--listen', '127.0.0.1:0', '--stun-port', '0', '--region', 'r', '--state-dir', join(dir, 'r')],
      ['daemon', '--socket', join(dir, 's.sock'), '--state-dir', join(dir, 'd')],
      ['up', '--socket', join(dir, 's.sock'), '--state-dir', join(dir, 'd')],
    ]) {
      const r = await runCli(...args, '--metrics-listen', '0.0.0.0:9101');
      assert.equal(r.code, 2, `${args[0]}: ${r.err}`);
      oneLine(r.err);
      assert.match(r.err, /not a loopback address.*--metrics-allow-remote/);
      const bad = await runCli(...args, '--metrics-listen', 'metrics.example:9101');
      assert.equal(bad.code, 2, `${args[0]}: ${bad.err}`);
      assert.match(bad.err, /expected IP:PORT/);
      const alone = await runCli(...args, '--metrics-allow-remote');
      assert.equal(alone.code, 2, `${args[0]}: ${alone.err}`);
      assert.match(alone.err, /goes with --metrics-listen/);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
