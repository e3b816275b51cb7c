// `meshctl up` takes the auth key from --auth-key (the key, or file:PATH) or
// from $MESHCTL_AUTH_KEY, and hands it to the daemon only inside the local API
// request: a daemon that `up` starts gets it neither on its command line nor
// in its environment. Runs the real bin/meshctl against a stand-in daemon.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/cli/version.js';
import { LOCALAPI, type Status, type UpRequest } from '../../src/localapi/types.js';

const KEY = 'mskey-0123456789ab-' + 'cd'.repeat(24);
const OTHER = 'mskey-ba9876543210-' + 'ef'.repeat(24);

function run(dir: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const base: NodeJS.ProcessEnv = { ...process.env, MESHCTL_SOCKET: '', MESHCTL_CONFIG_DIR: join(dir, 'config') };
    delete base.MESHCTL_AUTH_KEY;
    const p = spawn(process.execPath, [join(packageRoot(), 'bin', 'meshctl'), ...args], { env: { ...base, ...env } });
    let out = '';
    let err = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    p.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
    p.on('close', (code) => resolve({ code, out, err }));
  });
}

const status: Status = {
  version: '0',
  backendState: 'Running',
  self: { name: 'me', dnsName: null, ips: ['100.64.0.1'], nodeKey: 'k', os: 'linux', ifname: 'meshctl0', listenPort: 1, endpoints: [] },
  control: { url: 'https://c', connected: true, lastError: null },
  peers: [],
  health: [],
  homeRegion: null,
  relays: [],
  counters: null,
};

test('the key comes from --auth-key, file:PATH or $MESHCTL_AUTH_KEY, and reaches the daemon in the request', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-authkey-'));
  const socket = join(dir, 'd.sock');
  const seen: (string | undefined)[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if (req.url === LOCALAPI.status) return void res.end(JSON.stringify(status));
      if (req.url === LOCALAPI.up) {
        seen.push((JSON.parse(body) as UpRequest).authKey);
        return void res.end(JSON.stringify({ type: 'done', status }) + '\n');
      }
      res.writeHead(404).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(socket, r));
  try {
    const keyFile = join(dir, 'key');
    writeFileSync(keyFile, `${KEY}\n`, { mode: 0o600 });
    const up = ['--socket', socket, 'up', '--login-server', 'https://127.0.0.1:1', '--state-dir', join(dir, 'state')];
    for (const [args, env] of [
      [[], { MESHCTL_AUTH_KEY: KEY }],
      [[], { MESHCTL_AUTH_KEY: `file:${keyFile}` }],
      [['--auth-key', `file:${keyFile}`], { MESHCTL_AUTH_KEY: OTHER }],
      [[], {}],
    ] as [string[], Record<string, string>][]) {
      const r = await run(dir, [...up, ...args], env);
      assert.equal(r.code, 0, r.err);
      assert.ok(!r.out.includes(KEY) && !r.err.includes(KEY), 'the key is not printed');
    }
    assert.deepEqual(seen, [KEY, KEY, KEY, undefined]);
    const empty = await run(dir, up, { MESHCTL_AUTH_KEY: `file:${join(dir, 'missing')}` });
    assert.equal(empty.code, 2);
    assert.match(empty.err, /^MESHCTL_AUTH_KEY: cannot read auth key file .*missing: ENOENT\n$/);
    const big = join(dir, 'big');
    writeFileSync(big, 'x'.repeat(10_000));
    const tooBig = await run(dir, [...up, '--auth-key', `file:${big}`]);
    assert.equal(tooBig.code, 2);
    assert.match(tooBig.err, /longer than 4096 bytes/);
  } finally {
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a daemon that `up` starts gets the key neither in its argv nor in its environment', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-authkey-'));
  try {
    // a preload that records what the daemon process was started with, then stops it
    const dump = join(dir, 'daemon-start.json');
    const preload = join(dir, 'dump.cjs');
    writeFileSync(
      preload,
      `require('fs').writeFileSync(${JSON.stringify(dump)}, JSON.stringify({ argv: process.argv, env: process.env })); process.exit(9);\n`,
    );
    const r = await run(dir, ['--socket', join(dir, 'd.sock'), 'up', '--login-server', 'https://127.0.0.1:1', '--state-dir', join(dir, 'state')], {
      MESHCTL_AUTH_KEY: KEY,
      MESHCTL_DAEMON_NODE_ARGS: `--require ${preload}`,
    });
    assert.notEqual(r.code, 0);
    assert.match(r.err, /the daemon exited with status 9/);
    assert.ok(existsSync(dump), 'the daemon was started');
    const started = readFileSync(dump, 'utf8');
    const parsed = JSON.parse(started) as { argv: string[]; env: Record<string, string> };
    assert.ok(parsed.argv.includes('daemon'));
    assert.equal(parsed.env.MESHCTL_AUTH_KEY, undefined);
    assert.ok(!started.includes(KEY), 'the key is nowhere in what the daemon started with');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
