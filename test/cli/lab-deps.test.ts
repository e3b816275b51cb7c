// `meshctl lab up` on a machine without the lab's Debian packages: it checks
// them before it builds anything, never installs silently, and says exactly
// what to run. PATH is a shim without nft (and miniupnpd) whose apt-get is a
// script that only records how it was called: no real apt-get ever runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/cli/version.js';
import { labDir } from '../../src/lab/lab.js';
import { makePathShim } from '../helpers/path-shim.js';
import { oneLine } from '../helpers/cli-run.js';

const bin = join(packageRoot(), 'bin', 'meshctl');
/** The lab name for these runs: its namespaces would start with "nodeps-", so any that appear were made here. */
const NAME = 'nodeps';

/** An apt-get that logs its argv and DEBIAN_FRONTEND, and fails as apt-get does without a package index (or succeeds for `update`). */
const FAKE_APT = (log: string) => `#!/bin/sh
echo "DEBIAN_FRONTEND=$DEBIAN_FRONTEND $*" >> ${log}
[ "$1" = update ] && exit 0
echo "E: Unable to locate package $4" >&2
exit 100
`;

function setup(t: { after: (fn: () => void) => void }, without = ['nft', 'miniupnpd']) {
  const shim = makePathShim([...without, 'apt-get']);
  t.after(shim.cleanup);
  const log = join(shim.dir, 'apt-calls.log');
  writeFileSync(join(shim.dir, 'apt-get'), FAKE_APT(log), { mode: 0o755 });
  const run = (args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> =>
    new Promise((resolve) => {
      // stdin is not a terminal here (execFile gives a pipe): the "no terminal to ask on" path unless a flag says otherwise
      execFile(
        process.execPath,
        [bin, 'lab', 'up', '--name', NAME, ...args],
        { encoding: 'utf8', env: { ...process.env, PATH: shim.dir, MESHCTL_NO_INSTALL: '', ...env } },
        (err, out, errText) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out, err: errText }),
      );
    });
  const aptCalls = (): string[] => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []);
  return { run, aptCalls, shimDir: shim.dir };
}

/** Nothing of a lab was made: no state directory, no namespace with its prefix. */
function assertNothingBuilt(): void {
  assert.equal(existsSync(labDir(NAME)), false, 'no lab directory');
  const ns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  assert.doesNotMatch(ns, new RegExp(`^${NAME}-`, 'm'), 'no namespace');
}

test('lab up --no-install: exits non-zero with the install command naming nftables, runs no apt-get, builds nothing', async (t) => {
  const { run, aptCalls } = setup(t);
  const r = await run(['--no-install', '--install-deps']);
  assert.notEqual(r.code, 0);
  oneLine(r.err);
  assert.match(r.err, /the lab needs the Debian package nftables, and installing is turned off \(--no-install or MESHCTL_NO_INSTALL\)/);
  assert.match(r.err, /run `sudo apt-get install --no-install-recommends nftables`/);
  assert.equal(r.out, '');
  assert.deepEqual(aptCalls(), []);
  assertNothingBuilt();
});

test('MESHCTL_NO_INSTALL=1 refuses even with --install-deps', async (t) => {
  const { run, aptCalls } = setup(t);
  const r = await run(['--install-deps'], { MESHCTL_NO_INSTALL: '1' });
  assert.notEqual(r.code, 0);
  assert.match(r.err, /installing is turned off .*sudo apt-get install --no-install-recommends nftables/);
  assert.deepEqual(aptCalls(), []);
  assertNothingBuilt();
});

test('no terminal and no flag: prints the command and the flag, installs nothing; an upnp node adds miniupnpd-nftables', async (t) => {
  const { run, aptCalls } = setup(t);
  const r = await run([]);
  assert.notEqual(r.code, 0);
  oneLine(r.err);
  assert.match(
    r.err,
    /nftables, and there is no terminal to ask on \(--install-deps installs them without asking\): run `sudo apt-get install --no-install-recommends nftables`/,
  );
  const upnp = await run(['--nodes', 'easy,upnp']);
  assert.match(
    upnp.err,
    /the lab needs the Debian packages nftables, miniupnpd-nftables, .*`sudo apt-get install --no-install-recommends nftables miniupnpd-nftables`/,
  );
  assert.deepEqual(aptCalls(), []);
  assertNothingBuilt();
});

test('--install-deps runs apt-get as an argv (noninteractive, no recommends), updates the index when it is missing, and fails cleanly', {
  skip: process.getuid?.() === 0 ? false : 'installing needs root: checked as root only',
}, async (t) => {
  const { run, aptCalls } = setup(t);
  const r = await run(['--install-deps']);
  assert.notEqual(r.code, 0);
  assert.deepEqual(aptCalls(), [
    'DEBIAN_FRONTEND=noninteractive install -y --no-install-recommends nftables',
    'DEBIAN_FRONTEND=noninteractive update',
    'DEBIAN_FRONTEND=noninteractive install -y --no-install-recommends nftables',
  ]);
  assert.match(r.err, /installing nftables for the lab: apt-get install -y --no-install-recommends nftables/);
  assert.match(r.err, /E: Unable to locate package nftables/, "apt-get's own output is shown");
  assert.match(r.err, /meshctl lab up: the lab needs the Debian package nftables, and apt-get install failed \(exit 100\)/);
  assertNothingBuilt();
});

test('on a terminal it asks first: "n" installs nothing, "y" runs apt-get', { skip: process.getuid?.() === 0 ? false : 'installing needs root' }, async (t) => {
  const { aptCalls, shimDir } = setup(t);
  // script(1) gives the command a terminal; the answer is typed once the question is up
  const onTerminal = (answer: string): Promise<{ code: number; out: string }> =>
    new Promise((resolve) => {
      const cmd = `'${process.execPath}' '${bin}' lab up --name ${NAME}`;
      const p = execFile(
        'script',
        ['-qec', cmd, '/dev/null'],
        { encoding: 'utf8', env: { ...process.env, PATH: shimDir, MESHCTL_NO_INSTALL: '' } },
        (err, out) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out }),
      );
      let sent = false;
      p.stdout?.on('data', (d: string) => {
        if (!sent && d.includes('[y/N]')) {
          sent = true;
          p.stdin?.write(`${answer}\n`);
        }
      });
    });
  const no = await onTerminal('n');
  assert.notEqual(no.code, 0);
  assert.match(no.out, /install nftables with apt-get\? \[y\/N\]/);
  assert.match(no.out, /nftables, and the answer was not yes: run `sudo apt-get install --no-install-recommends nftables`/);
  assert.deepEqual(aptCalls(), []);
  const yes = await onTerminal('y');
  assert.notEqual(yes.code, 0, 'the stand-in apt-get fails');
  assert.equal(aptCalls()[0], 'DEBIAN_FRONTEND=noninteractive install -y --no-install-recommends nftables');
  assertNothingBuilt();
});
