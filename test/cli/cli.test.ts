// The command-line contract: every command listed, usage errors exit 2 with
// one line on stderr, version prints the package version, no daemon → exit 1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../src/cli/version.js';

const bin = join(packageRoot(), 'bin', 'meshctl');
function run(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, MESHCTL_SOCKET: '' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('--help lists every command of the contract', () => {
  const r = run('--help');
  assert.equal(r.code, 0);
  for (const c of ['up', 'down', 'logout', 'status', 'ping', 'netcheck', 'ip', 'whois', 'control', 'relay', 'debug', 'lab', 'version']) {
    assert.match(r.out, new RegExp(`^\\s+${c}\\b`, 'm'), `missing ${c}`);
  }
  assert.match(r.out, /--socket/);
});

test('version and --version print the package version', () => {
  const v = run('version');
  assert.equal(v.code, 0);
  assert.match(v.out, /^\d+\.\d+\.\d+\n$/);
  assert.equal(run('--version').out, v.out);
  assert.equal(JSON.parse(run('version', '--json').out).version, v.out.trim());
});

test('node commands without a daemon: "meshctl is stopped", exit 1', () => {
  const sock = ['--socket', '/nonexistent/meshctl.sock'];
  const st = run(...sock, 'status');
  assert.equal(st.code, 1);
  assert.equal(st.err, 'meshctl is stopped.\n');
  assert.equal(st.out, '');
  for (const args of [['ping', 'x'], ['ip'], ['down'], ['whois', '100.64.0.1'], ['netcheck']]) {
    const r = run(...sock, ...args);
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.err, /^meshctl is stopped \(no daemon at \/nonexistent\/meshctl\.sock\): start it with `meshctl up`\n$/);
  }
});

test('flag values are checked before anything runs', () => {
  for (const args of [
    ['control', 'serve', '--listen', 'nohost'],
    ['control', 'authkey', 'create', '--expiry', 'soon'],
    ['up', '--port', '70000'],
    ['up', '--auth-key', ''],
    ['up', '--timeout', '-1s'],
    ['ping', 'x', '-c', '0'],
    ['ping', 'x', '--until-direct=maybe'],
    ['ip', '-4', '-6'],
    ['lab', 'up', '--nodes', 'easy,cone'],
    ['relay', 'serve', '--region', 'Bad Region'],
  ]) {
    const r = run('--socket', '/nonexistent/meshctl.sock', ...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.equal(r.err.trim().split('\n').length, 1, r.err);
  }
});

test('bad usage gives one line and exit 2', () => {
  const unknown = run('--bogus-flag');
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /unknown option/);
  const badPort = run('debug', 'engine', '--ifname', 'x', '--listen-port', '70000');
  assert.equal(badPort.code, 2);
  assert.match(badPort.err, /--listen-port/);
  const badName = run('debug', 'engine', '--ifname', 'this-name-is-too-long');
  assert.equal(badName.code, 2);
  assert.match(badName.err, /--ifname/);
  assert.equal(run('debug', 'engine').code, 2, 'missing required --ifname');
});
