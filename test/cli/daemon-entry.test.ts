// `meshctl daemon` starts without the CLI parser when its arguments are plain
// (src/cli/daemon-entry.ts); anything else still gets the full CLI's help and errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { leanDaemonArgs } from '../../src/cli/daemon-entry.js';
import { DEFAULT_IFNAME, DEFAULT_PORT, DEFAULT_SOCKET, DEFAULT_STATE_DIR } from '../../src/localapi/types.js';
import { packageRoot } from '../../src/cli/version.js';

test('the arguments `meshctl up` and service files pass are parsed without the CLI', () => {
  assert.deepEqual(leanDaemonArgs(['--socket', '/run/m.sock', 'daemon', '--state-dir', '/var/lib/m', '--ifname', 'mesh1', '--port', '0'], {}), {
    socket: '/run/m.sock',
    stateDir: '/var/lib/m',
    ifname: 'mesh1',
    port: 0,
  });
  assert.deepEqual(leanDaemonArgs(['daemon', '--port=41642'], {}), {
    socket: DEFAULT_SOCKET,
    stateDir: DEFAULT_STATE_DIR,
    ifname: DEFAULT_IFNAME,
    port: 41642,
  });
  assert.deepEqual(leanDaemonArgs(['daemon'], { MESHCTL_SOCKET: '/tmp/s', MESHCTL_STATE_DIR: '/tmp/d' }), {
    socket: '/tmp/s',
    stateDir: '/tmp/d',
    ifname: DEFAULT_IFNAME,
    port: DEFAULT_PORT,
  });
});

test('anything the lean parser does not know is left to the full CLI', () => {
  for (const args of [
    ['daemon', '--help'],
    ['daemon', '-h'],
    ['daemon', '--port', '70000'],
    ['daemon', '--port', 'x'],
    ['daemon', '--port'],
    ['daemon', '--state-dir='],
    ['--socket=', 'daemon'],
    ['daemon', '--state-dir', '--ifname', 'x'],
    ['daemon', '--verbose'],
    ['daemon', '--socket', '/s'], // --socket is a global option, before the command
    ['--state-dir', '/d', 'daemon'],
    ['ping', 'daemon'],
    ['status'],
    ['daemon', 'daemon'],
  ]) {
    assert.equal(leanDaemonArgs(args, {}), null, args.join(' '));
  }
});

test('bin/meshctl: `daemon --help` and a bad flag still get the full CLI', () => {
  const bin = join(packageRoot(), 'bin', 'meshctl');
  const help = spawnSync(process.execPath, [bin, 'daemon', '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /--state-dir/);
  const bad = spawnSync(process.execPath, [bin, 'daemon', '--bogus'], { encoding: 'utf8' });
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /unknown option '--bogus'/);
});

test('bin/meshctl: the lean daemon reports a start failure in one line and exits 1', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-lean-'));
  try {
    writeFileSync(join(dir, 'file'), '');
    const r = spawnSync(
      process.execPath,
      [join(packageRoot(), 'bin', 'meshctl'), '--socket', join(dir, 's'), 'daemon', '--state-dir', join(dir, 'file', 'state')],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /^meshctl daemon: ENOTDIR: not a directory/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bin/meshctl: the daemon and the CLI run from their bundles only while they are newer than the compiled modules', () => {
  const root = mkdtempSync(join(tmpdir(), 'meshctl-bundle-'));
  try {
    mkdirSync(join(root, 'bin'));
    mkdirSync(join(root, 'dist', 'src', 'cli'), { recursive: true });
    copyFileSync(join(packageRoot(), 'bin', 'meshctl'), join(root, 'bin', 'meshctl'));
    const stub = (name: string): string =>
      `export const leanDaemonArgs = () => ({});\nexport async function runDaemon() { process.stdout.write('${name}'); }\n`;
    const entry = join(root, 'dist', 'src', 'cli', 'daemon-entry.js');
    const bundle = join(root, 'dist', 'src', 'cli', 'daemon-entry.bundle.js');
    writeFileSync(entry, stub('modules'));
    const run = (): string => spawnSync(process.execPath, [join(root, 'bin', 'meshctl'), 'daemon'], { encoding: 'utf8' }).stdout;
    assert.equal(run(), 'modules', 'no bundle');
    writeFileSync(bundle, stub('bundle'));
    utimesSync(entry, new Date(1_000_000), new Date(1_000_000));
    assert.equal(run(), 'bundle', 'a bundle built after the modules');
    utimesSync(bundle, new Date(500_000), new Date(500_000));
    assert.equal(run(), 'modules', 'a bundle older than the modules (a plain tsc since) is not run');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  // and the build the tests run was bundled, so the daemons and commands they start run the shipped files
  const cli = join(packageRoot(), 'dist', 'src', 'cli');
  for (const name of ['daemon-entry', 'main']) {
    assert.ok(
      statSync(join(cli, `${name}.bundle.js`)).mtimeMs >= statSync(join(cli, `${name}.js`)).mtimeMs,
      `dist has no current ${name} bundle: run \`npm run build\``,
    );
  }
});

test('bin/meshctl: with no build, each entry says to build instead of a stack trace', () => {
  const root = mkdtempSync(join(tmpdir(), 'meshctl-unbuilt-'));
  try {
    mkdirSync(join(root, 'bin'));
    copyFileSync(join(packageRoot(), 'bin', 'meshctl'), join(root, 'bin', 'meshctl'));
    for (const args of [['--version'], ['daemon'], ['status']]) {
      const r = spawnSync(process.execPath, [join(root, 'bin', 'meshctl'), ...args], { encoding: 'utf8' });
      assert.equal(r.status, 1, args.join(' '));
      assert.equal(r.stderr, 'meshctl: not built; run `npm install` (or `npm run build`) in the meshctl directory first\n', args.join(' '));
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
