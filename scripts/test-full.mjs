// `npm run test:full`: everything a fresh Debian machine needs for the whole
// suite, then the suite. It installs the Debian packages of deps/debian.json
// (saying which and why), unpacks systemd-resolved for the resolved-mode test
// without installing it, and runs `npm test`. CI runs exactly this (.ci/run).
// Plain `npm test` installs nothing: it skips what it cannot run, loudly.
//
// Plain Node and no dependencies: it runs before anything is built.
// `--dry-run` prints what it would run, and runs nothing.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const LIST = join(root, 'deps', 'debian.json');
/** Debian policy 5.6.1 (as src/util/tools.ts): never an option, never a shell word. */
const PACKAGE_NAME = /^[a-z0-9][a-z0-9+.-]{1,62}$/;
const dryRun = process.argv.includes('--dry-run');

function die(msg) {
  process.stderr.write(`test:full: ${msg}\n`);
  process.exit(1);
}

function run(argv, opts = {}) {
  process.stderr.write(`test:full: ${argv.join(' ')}\n`);
  if (dryRun) return { status: 0, stderr: '' };
  const r = spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf8', ...opts });
  if (r.error) die(`${argv[0]}: ${r.error.code === 'ENOENT' ? 'not found on PATH' : r.error.message}`);
  if (r.stderr) process.stderr.write(r.stderr);
  return r;
}

const list = JSON.parse(readFileSync(LIST, 'utf8'));
const packages = list.packages ?? [];
for (const p of [...packages, ...(list.unpacked ?? [])]) if (!PACKAGE_NAME.test(p.name)) die(`${LIST}: "${p.name}" is not a Debian package name`);
const names = packages.map((p) => p.name);

if (dryRun) process.stderr.write('test:full: dry run: the commands are printed, none is run\n');
process.stderr.write('test:full: the tests and the lab run these programs, from these Debian packages:\n');
for (const p of packages) process.stderr.write(`  ${p.name.padEnd(20)} ${p.tools.length ? `(${p.tools.join(', ')}) ` : ''}${p.why}\n`);
for (const p of list.unpacked ?? []) process.stderr.write(`  ${p.name.padEnd(20)} unpacked, not installed: ${p.why}\n`);

if (!dryRun && !existsSync(join(root, 'node_modules', '.bin', 'tsc'))) die('the node dependencies are not installed: run `npm install` first');
if (!dryRun && process.getuid?.() !== 0)
  die('installing Debian packages needs root: run `sudo npm run test:full` (or `npm test`, which installs nothing and skips what it cannot run)');

// what dpkg says is not installed; everything when dpkg-query itself is missing (not Debian: apt-get then says so)
// biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format fields, not a JavaScript template
const DPKG_FORMAT = '${Package} ${db:Status-Status}\\n';
const q = dryRun ? { status: 1, stdout: '' } : spawnSync('dpkg-query', ['-W', '-f', DPKG_FORMAT, ...names], { encoding: 'utf8' });
const installed = new Set(
  String(q.stdout ?? '')
    .split('\n')
    .filter((l) => l.endsWith(' installed'))
    .map((l) => l.split(' ')[0]),
);
const missing = names.filter((n) => !installed.has(n));
const aptEnv = { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } };
if (missing.length === 0) {
  process.stderr.write('test:full: all of them are installed\n');
} else {
  process.stderr.write(`test:full: installing ${missing.join(', ')}\n`);
  // --no-install-recommends: wireguard-tools otherwise pulls a kernel image we do not use
  const install = ['apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...missing];
  let r = run(install, aptEnv);
  if (r.status !== 0) {
    // a fresh machine or container has no package index, or a stale one: fetch it and try again
    if (run(['apt-get', 'update', '-qq'], aptEnv).status !== 0) die('apt-get update failed; see above');
    r = run(install, aptEnv);
  }
  if (r.status !== 0) die(`apt-get install failed (exit ${r.status}); see above`);
}

// systemd-resolved is unpacked, not installed: installing it would replace this machine's
// /etc/resolv.conf. The resolved-mode test runs it on a private bus in a namespace of its own
// (test/osdns/root.test.ts), from MESHCTL_TEST_RESOLVED_ROOT.
const env = { ...process.env };
if (!env.MESHCTL_TEST_RESOLVED_ROOT) {
  for (const p of list.unpacked ?? []) {
    const dir = dryRun ? join(tmpdir(), 'meshctl-test-resolved.XXXXXX') : mkdtempSync(join(tmpdir(), 'meshctl-test-resolved.'));
    const download = () => run(['apt-get', 'download', '-qq', p.name], { cwd: dir }).status;
    // with every package installed, the index may never have been fetched: fetch it and try once more
    if (download() !== 0 && (run(['apt-get', 'update', '-qq'], aptEnv).status !== 0 || download() !== 0)) die(`apt-get download ${p.name} failed; see above`);
    const deb = dryRun ? `${p.name}_VERSION.deb` : readdirSync(dir).find((f) => f.startsWith(`${p.name}_`) && f.endsWith('.deb'));
    if (!deb) die(`apt-get download ${p.name} left no .deb in ${dir}`);
    if (run(['dpkg-deb', '-x', join(dir, deb), join(dir, 'root')]).status !== 0) die(`dpkg-deb -x ${deb} failed; see above`);
    if (p.name === 'systemd-resolved') env.MESHCTL_TEST_RESOLVED_ROOT = join(dir, 'root');
  }
}

process.stderr.write(`test:full: npm test${env.MESHCTL_TEST_RESOLVED_ROOT ? ` (MESHCTL_TEST_RESOLVED_ROOT=${env.MESHCTL_TEST_RESOLVED_ROOT})` : ''}\n`);
if (dryRun) process.exit(0);
const t = spawnSync('npm', ['test'], { stdio: 'inherit', env, cwd: root });
if (t.error) die(`npm: ${t.error.message}`);
process.exit(t.status ?? 1);
