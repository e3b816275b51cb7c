// A relay started without --verify-clients relays for anyone who knows a node
// key: it says so at start, in one line on stderr, with the fix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/cli/version.js';
import { OPEN_RELAY_WARNING } from '../../src/relay/server.js';
import { fakeVerify, relay, until } from './harness.js';

test('the warning is logged without --verify-clients and not with it', async () => {
  const open = await relay();
  const ctl = await fakeVerify();
  const verified = await relay({ verifyClientsUrl: ctl.url, verifyClientsCa: ctl.caFile });
  try {
    assert.ok(open.logs.includes(OPEN_RELAY_WARNING), open.logs.join('\n'));
    assert.ok(!verified.logs.some((l) => /WARNING/.test(l)), verified.logs.join('\n'));
  } finally {
    await verified.close();
    await ctl.close();
    await open.close();
  }
});

test('meshctl relay serve without --verify-clients warns on stderr in one line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-openrelay-'));
  const p = spawn(
    process.execPath,
    [join(packageRoot(), 'bin', 'meshctl'), 'relay', 'serve', '--listen', '127.0.0.1:0', '--stun-port', '0', '--region', 'open', '--state-dir', dir],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  try {
    await until(() => /WARNING/.test(err) || p.exitCode !== null, 15_000, 'the warning');
    const line = err.split('\n').find((l) => /WARNING/.test(l)) ?? '';
    assert.match(
      line,
      /no --verify-clients: this relay carries packets for anyone who knows a node key.*--verify-clients https:\/\/CONTROL:PORT --control-ca PEM$/,
    );
  } finally {
    p.kill('SIGKILL');
    await new Promise((r) => (p.exitCode !== null ? r(null) : p.once('exit', r)));
    rmSync(dir, { recursive: true, force: true });
  }
});
