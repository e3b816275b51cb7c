// The programs meshctl runs and their Debian packages (src/util/tools.ts,
// deps/debian.json): the list parses and says what the lab needs, a hostile
// list is refused, programs are found on PATH without spawning, and a missing
// one is a one-line error naming its package, from every caller that runs one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/cli/version.js';
import {
  aptInstallArgv,
  aptInstallCommand,
  DEBIAN_DEPS_FILE,
  DebianDepsError,
  debianDeps,
  findTool,
  loadDebianDeps,
  packageOfTool,
  packagesFor,
  parseDebianDeps,
  requireTool,
  ToolMissingError,
} from '../../src/util/tools.js';
import { requireArgv } from '../../src/lab/lab.js';
import { runNft } from '../../src/daemon/snat.js';
import { runResolvectl } from '../../src/osdns/resolvectl.js';
import { makePathShim } from '../helpers/path-shim.js';
import { missingToolsReason } from '../helpers/tools.js';

const root = packageRoot();

/** Runs `fn` with PATH set to `path`, then puts PATH back. */
async function withPath<T>(path: string, fn: () => T | Promise<T>): Promise<T> {
  const saved = process.env.PATH;
  process.env.PATH = path;
  try {
    return await fn();
  } finally {
    process.env.PATH = saved;
  }
}

test('deps/debian.json: the file the code reads, and what the lab and the tests need', () => {
  assert.equal(DEBIAN_DEPS_FILE, join(root, 'deps', 'debian.json'));
  const d = loadDebianDeps();
  const names = d.packages.map((p) => p.name);
  for (const n of ['iproute2', 'nftables', 'iperf3', 'iputils-ping', 'socat', 'tcpdump', 'wireguard-go', 'wireguard-tools', 'ca-certificates']) {
    assert.ok(names.includes(n), n);
  }
  for (const n of ['miniupnpd-nftables', 'dbus-daemon', 'libsystemd-shared']) assert.ok(names.includes(n), n);
  assert.deepEqual(
    packagesFor('lab', [], d).map((p) => p.name),
    ['iproute2', 'nftables'],
  );
  assert.deepEqual(
    packagesFor('lab', ['easy', 'upnp'], d).map((p) => p.name),
    ['iproute2', 'nftables', 'miniupnpd-nftables'],
  );
  assert.deepEqual(
    packagesFor('tests', [], d).map((p) => p.name),
    names,
    'the tests use every installed package',
  );
  assert.ok(
    d.packages.every((p) => p.why.length > 0),
    'each package says why',
  );
  assert.equal(packageOfTool('nft', d), 'nftables');
  assert.equal(packageOfTool('wg', d), 'wireguard-tools');
  assert.equal(packageOfTool('miniupnpd', d), 'miniupnpd-nftables');
  assert.equal(packageOfTool('resolvectl', d), 'systemd-resolved');
  assert.equal(packageOfTool('systemd-analyze', d), 'systemd');
  assert.equal(packageOfTool('no-such-tool', d), undefined);
  assert.equal(packageOfTool('constructor', d), undefined, 'no prototype key is a program');
});

test('a damaged or hostile list is refused with one line naming the file, never passed to apt-get', () => {
  const good = readFileSync(DEBIAN_DEPS_FILE, 'utf8');
  const cases: [string, RegExp][] = [
    ['{', /not JSON/],
    ['[]', /not a JSON object/],
    [JSON.stringify({ packages: [{ name: '-o', tools: [], for: ['lab'] }] }), /packages\[0\]\.name is not a Debian package name/],
    [JSON.stringify({ packages: [{ name: 'x; rm -rf /', tools: [], for: ['lab'] }] }), /not a Debian package name/],
    [JSON.stringify({ packages: [{ name: 'nftables', tools: ['../nft'], for: ['lab'] }] }), /tools holds "\.\.\/nft"/],
    [JSON.stringify({ packages: [{ name: 'nftables', tools: ['nft'], for: ['everyone'] }] }), /for holds "everyone"/],
    [JSON.stringify({ packages: [{ name: 'nftables', tools: ['nft'], for: [] }] }), /for is empty/],
    [JSON.stringify({ packages: [{ name: 'nftables', tools: ['nft'], for: ['lab'], why: 'a\u001b[2Jb' }] }), /not printable/],
    [JSON.stringify({ packages: Array.from({ length: 65 }, () => ({ name: 'aa', for: ['lab'] })) }), /at most 64 packages/],
    [JSON.stringify({ packages: [], elsewhere: { sh: '--force' } }), /"elsewhere" maps "sh" badly/],
  ];
  for (const [text, re] of cases) {
    assert.throws(
      () => parseDebianDeps(text, '/x/debian.json'),
      (e: Error) => e instanceof DebianDepsError && re.test(e.message) && e.message.startsWith('/x/debian.json: ') && !e.message.includes('\n'),
      text.slice(0, 60),
    );
  }
  assert.deepEqual(parseDebianDeps(good), debianDeps());
  assert.throws(() => loadDebianDeps('/nonexistent/debian.json'), /\/nonexistent\/debian\.json: cannot read it \(ENOENT\); restore it/);
  assert.throws(() => aptInstallArgv(['nftables', '-oAPT::Get::Foo=1']), DebianDepsError);
  assert.deepEqual(aptInstallArgv(['nftables', 'iproute2']), ['apt-get', 'install', '-y', '--no-install-recommends', 'nftables', 'iproute2']);
  assert.equal(aptInstallCommand(['nftables']), 'sudo apt-get install --no-install-recommends nftables');
});

test('findTool searches PATH without spawning: executable files only, absolute entries only', (t) => {
  const shim = makePathShim([]);
  t.after(shim.cleanup);
  writeFileSync(join(shim.dir, 'plain-file'), 'not a program', { mode: 0o644 });
  assert.equal(findTool('node', shim.dir), join(shim.dir, 'node'));
  assert.equal(findTool('plain-file', shim.dir), undefined, 'not executable');
  assert.equal(findTool('node', `relative/dir::${'/nonexistent'}`), undefined, 'relative and empty entries are skipped');
  assert.equal(findTool(process.execPath, ''), process.execPath, 'a path is checked as it is');
  assert.equal(findTool('/nonexistent/nft', '/usr/sbin'), undefined);
});

test('requireTool: a missing program is one line naming its package and the command; found ones are remembered, missing ones not', async (t) => {
  const shim = makePathShim(['nft', 'wg', 'miniupnpd', 'zz-meshctl-test-tool']);
  t.after(shim.cleanup);
  await withPath(shim.dir, () => {
    assert.throws(
      () => requireTool('nft'),
      (e: Error) =>
        e instanceof ToolMissingError &&
        e.message === 'nft not found: install the Debian package nftables (sudo apt-get install nftables)' &&
        e.tool === 'nft' &&
        e.pkg === 'nftables',
    );
    assert.throws(
      () => requireTool('wg'),
      /^ToolMissingError: wg not found: install the Debian package wireguard-tools \(sudo apt-get install wireguard-tools\)$/,
    );
    assert.throws(() => requireTool('miniupnpd'), /miniupnpd not found: install the Debian package miniupnpd-nftables/);
    assert.throws(() => requireTool('/nonexistent/resolvectl-bin', 'resolvectl'), /resolvectl-bin not found: install the Debian package systemd-resolved/);
    assert.throws(
      () => requireTool('zz-meshctl-test-tool'),
      /^ToolMissingError: zz-meshctl-test-tool not found on PATH: install the package that provides it$/,
    );
    // installed after a miss: found on the next call
    symlinkSync(process.execPath, join(shim.dir, 'zz-meshctl-test-tool'));
    assert.equal(requireTool('zz-meshctl-test-tool'), join(shim.dir, 'zz-meshctl-test-tool'));
    // found once: remembered for the process, no second search
    rmSync(join(shim.dir, 'zz-meshctl-test-tool'));
    assert.equal(requireTool('zz-meshctl-test-tool'), join(shim.dir, 'zz-meshctl-test-tool'));
  });
});

test('every caller checks its program first: the lab (also inside ip netns exec), nft for SNAT, resolvectl', async (t) => {
  const shim = makePathShim(['nft', 'tc', 'resolvectl']);
  t.after(shim.cleanup);
  await withPath(shim.dir, async () => {
    assert.throws(() => requireArgv('ip', ['netns', 'exec', 'r1', 'nft', '-f', '-']), /^ToolMissingError: nft not found: install the Debian package nftables/);
    assert.throws(
      () => requireArgv('ip', ['netns', 'exec', 'r1', 'env', 'A=1', 'B=2', 'tc', 'qdisc']),
      /^ToolMissingError: tc not found: install the Debian package iproute2/,
    );
    requireArgv('ip', ['netns', 'exec', 'r1', 'env', 'A=1', process.execPath, '-e', '0']);
    requireArgv('ip', ['-n', 'r1', 'link', 'set', 'lo', 'up']);
    assert.throws(() => requireArgv('nft', ['-f', '-']), /^ToolMissingError: nft not found/);
    await assert.rejects(
      runNft({ nftables: [] }),
      (e: Error) => e.message === 'nft not found: install the Debian package nftables (sudo apt-get install nftables), or run with --snat-subnet-routes=false',
    );
    await assert.rejects(
      runResolvectl('resolvectl', ['revert', 'mesh0']),
      /^Error: resolvectl not found: install the Debian package systemd-resolved \(sudo apt-get install systemd-resolved\), or run with --accept-dns=false$/,
    );
  });
});

test('the tests skip naming the Debian packages of the programs they lack, and the command', (t) => {
  const shim = makePathShim(['wg', 'wireguard-go']);
  t.after(shim.cleanup);
  assert.equal(missingToolsReason(['ip', 'node'], shim.dir), false);
  assert.equal(
    missingToolsReason(['ip', 'wg', 'wireguard-go'], shim.dir),
    'needs wg, wireguard-go, not found on PATH (Debian packages: wireguard-tools, wireguard-go): ' +
      'run `sudo apt-get install --no-install-recommends wireguard-tools wireguard-go`, or `sudo npm run test:full`',
  );
});

test(".ci/run installs the list's packages, reading deps/debian.json, then runs `npm run test:full`; it hard-codes no package", () => {
  const ci = readFileSync(join(root, '.ci', 'run'), 'utf8');
  const code = ci
    .split('\n')
    .filter((l) => !l.trim().startsWith('#'))
    .join('\n');
  assert.match(code, /readFileSync\("deps\/debian\.json"/);
  assert.match(code, /^apt-get update -qq$/m);
  assert.match(code, /^apt-get install -y -qq --no-install-recommends "\$\{debian_packages\[@\]\}"/m);
  assert.match(code, /\nnpm ci [^\n]*\nnpm run test:full\n$/, 'the node dependencies, then the README command, last');
  for (const p of [...debianDeps().packages, ...debianDeps().unpacked]) assert.doesNotMatch(code, new RegExp(`\\b${p.name}\\b`), `.ci/run names ${p.name}`);
  // the names it reads are exactly the list's
  const names = execFileSync('node', ['-e', code.match(/node -e '([^']*)'/)![1]!], { cwd: root, encoding: 'utf8' })
    .trim()
    .split('\n');
  assert.deepEqual(
    names,
    debianDeps().packages.map((p) => p.name),
  );
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string>; files: string[] };
  assert.equal(pkg.scripts['test:full'], 'node scripts/test-full.mjs');
  assert.ok(pkg.files.includes('deps'), 'the list ships with the package: lab up reads it');
});

test('npm run test:full installs exactly the list, says why, unpacks systemd-resolved, then runs npm test (--dry-run)', () => {
  // --dry-run prints its commands and runs none of them; without a copy named already (as under test:full itself) it unpacks one
  const { MESHCTL_TEST_RESOLVED_ROOT: _named, ...env } = process.env;
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'test-full.mjs'), '--dry-run'], { encoding: 'utf8', env });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, '', 'everything goes to stderr');
  const d = debianDeps();
  for (const p of d.packages) assert.ok(r.stderr.includes(`  ${p.name.padEnd(20)} `) && r.stderr.includes(p.why), `${p.name} and why it is needed`);
  const lines = r.stderr.split('\n');
  const install = lines.find((l) => l.startsWith('test:full: apt-get install '));
  assert.equal(install, `test:full: apt-get install -y -qq --no-install-recommends ${d.packages.map((p) => p.name).join(' ')}`);
  assert.ok(lines.includes('test:full: apt-get download -qq systemd-resolved'));
  assert.match(r.stderr, /^test:full: npm test \(MESHCTL_TEST_RESOLVED_ROOT=.*\/root\)$/m);
});

test('npm run test:full without root says so and installs nothing', () => {
  // as root (CI), run it as an unprivileged user, which is the case under test: from a copy that user can read
  // (the checkout may sit under /root), with what the script looks for beside it
  const dir = mkdtempSync(join(tmpdir(), 'meshctl-test-full-'));
  try {
    for (const d of ['scripts', 'deps', 'node_modules/.bin']) mkdirSync(join(dir, d), { recursive: true });
    copyFileSync(join(root, 'scripts', 'test-full.mjs'), join(dir, 'scripts', 'test-full.mjs'));
    copyFileSync(join(root, 'deps', 'debian.json'), join(dir, 'deps', 'debian.json'));
    writeFileSync(join(dir, 'node_modules', '.bin', 'tsc'), '');
    chmodSync(dir, 0o755);
    const script = join(dir, 'scripts', 'test-full.mjs');
    const r =
      process.getuid?.() === 0
        ? spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, script], { encoding: 'utf8' })
        : spawnSync(process.execPath, [script], { encoding: 'utf8' });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /installing Debian packages needs root: run `sudo npm run test:full`/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
