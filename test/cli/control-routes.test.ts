// `meshctl control routes …` and `control device …` as a user runs them: the
// real binary against a real control server on loopback (through its admin
// socket), exit codes, one-line errors, --json, and the device's config on
// stdout with no QR code when stdout is not a terminal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { packageRoot } from '../../src/cli/version.js';
import { oneLine, runCli } from '../helpers/cli-run.js';
import { keyFromText } from '../../src/crypto/keys.js';
import { harness, Node, registerBody } from '../control/helpers.js';

const bin = join(packageRoot(), 'bin', 'meshctl');
const run = runCli;

test('help names the routes and device commands', async () => {
  const routes = await run('control', 'routes', '--help');
  assert.equal(routes.code, 0);
  for (const c of ['list', 'approve', 'reject']) assert.match(routes.out, new RegExp(`^\\s+${c}\\b`, 'm'), c);
  const device = await run('control', 'device', '--help');
  for (const c of ['add', 'list', 'remove']) assert.match(device.out, new RegExp(`^\\s+${c}\\b`, 'm'), c);
  assert.match((await run('control', 'device', 'add', '--help')).out, /--via <gateway>[\s\S]*--endpoint <host:port>/);
});

test('control routes approve/list/reject and control device add/list/remove against a running server', async () => {
  const h = await harness();
  try {
    const dir = ['--state-dir', h.dir];
    const n = new Node(h.server.publicKey!);
    const reg = await h.post(
      '/meshctl/v1/register',
      n.seal('register', { ...registerBody(await h.authKey(), 'gw'), advertised: { routes: ['192.168.1.0/24'], exitNode: true } }),
    );
    assert.equal(reg.status, 200);

    const ok = await run('control', 'routes', 'approve', 'gw', '192.168.1.0/24', ...dir);
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.err, /^192\.168\.1\.0\/24 approved for gw\n/m);
    assert.equal((await run('control', 'routes', 'approve', 'gw', '0.0.0.0/0', ...dir)).code, 0);
    const pre = await run('control', 'routes', 'approve', 'gw', '10.5.0.0/16', ...dir);
    assert.match(pre.err, /not advertised yet/);

    const bad = await run('control', 'routes', 'approve', 'gw', '192.168.1.7/24', ...dir);
    assert.equal(bad.code, 2);
    oneLine(bad.err);
    assert.match(bad.err, /host bits set: the prefix is 192\.168\.1\.0\/24/);
    const mesh = await run('control', 'routes', 'approve', 'gw', '100.64.0.0/16', ...dir);
    assert.equal(mesh.code, 2);
    assert.match(mesh.err, /overlaps the mesh prefix/);
    assert.equal((await run('control', 'routes', 'approve', 'nobody', '10.0.0.0/8', ...dir)).code, 4);

    const list = await run('control', 'routes', 'list', ...dir);
    assert.equal(list.code, 0, list.err);
    assert.match(list.out, /^NODE\s+PREFIX\s+ADVERTISED\s+APPROVED\s+PRIMARY\s+STATE$/m);
    assert.match(list.out, /^gw\s+192\.168\.1\.0\/24\s+yes\s+yes\s+yes\s+offline$/m);
    assert.match(list.out, /^gw\s+exit node\s+yes\s+yes\s+-\s+offline$/m);
    assert.match(list.out, /^gw\s+10\.5\.0\.0\/16\s+no\s+yes\s+no\s+offline$/m);
    const json = JSON.parse((await run('control', 'routes', 'list', '--json', ...dir)).out) as { kind: string; prefix: string }[];
    assert.deepEqual(
      json.map((r) => [r.kind, r.prefix]),
      [
        ['route', '192.168.1.0/24'],
        ['route', '10.5.0.0/16'],
        ['exit', '0.0.0.0/0,::/0'],
      ],
    );
    const rej = await run('control', 'routes', 'reject', 'gw', '::/0', ...dir);
    assert.equal(rej.code, 0, rej.err);
    assert.equal(rej.err, 'exit node no longer approved for gw\n');
    assert.equal((await run('control', 'routes', 'reject', 'gw', '::/0', ...dir)).code, 4);

    // the device: config on stdout, no QR code (stdout is a pipe), the notes on stderr
    const add = await run('control', 'device', 'add', 'phone', '--via', 'gw', '--endpoint', 'home.example.org:51820', ...dir);
    assert.equal(add.code, 0, add.err);
    assert.match(add.err, /device phone \(100\.[\d.]+, fd[0-9a-f:]+\) added behind gw; Endpoint home\.example\.org:51820: given with --endpoint/);
    assert.match(add.err, /shown once and stored nowhere/);
    const lines = add.out.trimEnd().split('\n');
    assert.equal(lines[0], '[Interface]');
    assert.equal(lines.at(-1), 'PersistentKeepalive = 25', 'the config is all of stdout: no QR code when not a terminal');
    assert.ok(!/[\u2580-\u259f]/.test(add.out), 'no block characters of a QR code');
    const priv = /^PrivateKey = (\S+)$/m.exec(add.out)![1]!;
    assert.ok(keyFromText(priv), 'a 32-byte base64 private key');
    assert.match(add.out, /^AllowedIPs = 100\.64\.0\.0\/10, fd[0-9a-f:]+::\/48, 192\.168\.1\.0\/24$/m);
    assert.match(add.out, /^MTU = 1280$/m);
    assert.match(add.out, /^DNS = 100\.100\.100\.100, fd[0-9a-f:]+::53, mesh\.internal$/m);

    const devs = JSON.parse((await run('control', 'device', 'list', '--json', ...dir)).out) as { name: string; publicKey: string }[];
    assert.deepEqual(
      devs.map((d) => d.name),
      ['phone'],
    );
    assert.ok(!JSON.stringify(devs).includes(priv), 'the private key is not kept');
    const none = await run('control', 'device', 'add', 'tab', '--via', 'gw', ...dir);
    assert.equal(none.code, 2);
    oneLine(none.err);
    assert.match(none.err, /reports no endpoint with a public address .*pass --endpoint HOST:PORT/);
    const rm = await run('control', 'device', 'remove', 'phone', ...dir);
    assert.equal(rm.code, 0, rm.err);
    assert.match(rm.err, /^device phone \(id \d+\) removed\n$/);
    assert.equal((await run('control', 'device', 'remove', 'phone', ...dir)).code, 4);
  } finally {
    await h.close();
  }
});

test('on a terminal, control device add also prints the config as a QR code', async (t) => {
  const script = await new Promise<boolean>((resolve) => execFile('script', ['--version'], (err) => resolve(!err)));
  if (!script) return t.skip('needs script(1) from util-linux for a pseudo-terminal');
  const h = await harness();
  try {
    const n = new Node(h.server.publicKey!);
    assert.equal((await h.post('/meshctl/v1/register', n.seal('register', registerBody(await h.authKey(), 'gw')))).status, 200);
    // script(1) runs the command on a pseudo-terminal; the arguments are fixed text and a temp dir path
    const cmd = [process.execPath, bin, 'control', 'device', 'add', 'phone', '--via', 'gw', '--endpoint', '192.0.2.1:51820', '--state-dir', h.dir];
    const out = await new Promise<string>((resolve, reject) =>
      execFile('script', ['-qec', cmd.map((a) => `'${a}'`).join(' '), '/dev/null'], { encoding: 'utf8' }, (err, stdout) =>
        err ? reject(err) : resolve(stdout),
      ),
    );
    assert.match(out, /PersistentKeepalive = 25/);
    assert.match(out, /[\u2580-\u259f]/, 'QR code block characters after the config');
  } finally {
    await h.close();
  }
});
