// As root, on real kernels' terms: a resolv.conf that is a bind mount (rename
// over it fails, the in-place write works and the restore is exact), and a
// network namespace made by `ip netns add` whose /etc/netns/NAME/resolv.conf
// `ip netns exec` bind-mounts over /etc/resolv.conf: OsDns runs inside it,
// glibc's resolver (getent) reads the file it wrote, and after a kill -9 the
// next start's recover() puts the file back byte for byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { skipTest } from '../helpers/ci.js';
import { toolsSkipReason } from '../helpers/tools.js';
import { rootSkipReason } from '../helpers/root.js';
import type { OsDnsStatus, RecoverResult } from '../../src/osdns/os-dns.js';
import { Lab, must, sh } from '../helpers/netns.js';

const skip = rootSkipReason();
const CHILD = fileURLToPath(new URL('./fixtures/osdns-child.js', import.meta.url));
const RESOLVED_CHILD = fileURLToPath(new URL('./fixtures/resolved-child.js', import.meta.url));
const ORIGINAL = Buffer.from("# the namespace's own file\nnameserver 192.0.2.53\nsearch lab.example\noptions ndots:1 attempts:2\n; no newline at the end");

function lines(out: string): Record<string, unknown>[] {
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

/** The child's JSON lines once one has `key`, or a rejection with its stderr at the deadline. */
function waitForLine(p: ChildProcess, key: string, deadlineMs = 20_000): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`child gave no "${key}" line: ${out} ${err}`)), deadlineMs);
    p.stderr!.on('data', (d) => (err += d));
    p.stdout!.on('data', (d) => {
      out += d;
      const got = lines(out.slice(0, out.lastIndexOf('\n') + 1));
      if (got.some((o) => key in o)) clearTimeout(timer), resolve(got);
    });
    p.once('exit', (code) => (clearTimeout(timer), reject(new Error(`child exited ${code} before "${key}": ${err}`))));
  });
}

test('a bind-mounted resolv.conf: rename over it fails with EBUSY, the in-place write works, restore is exact', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'osdns-bind-'));
  try {
    const src = join(dir, 'netns-resolv.conf');
    const dst = join(dir, 'resolv.conf');
    writeFileSync(src, ORIGINAL);
    chmodSync(src, 0o640);
    writeFileSync(dst, 'nameserver 203.0.113.1\n');
    // a private mount namespace: the bind mount lives and dies with the child
    const r = await sh('unshare', ['-m', '--propagation', 'private', process.execPath, CHILD, 'bind', src, dst, join(dir, 'state')]);
    assert.equal(r.code, 0, r.stderr);
    const [applied, restored] = lines(r.stdout);
    assert.equal(applied!.renameError, 'EBUSY');
    assert.match(String(applied!.how), /written in place \(rename refused/);
    assert.match(String(applied!.applied), /^nameserver 127\.0\.0\.1$/m, 'the write went through the mount into the source file');
    assert.deepEqual(restored, { restored: true });
    assert.deepEqual(readFileSync(src), ORIGINAL, 'byte for byte');
    assert.equal(statSync(src).mode & 0o777, 0o640);
    assert.equal(readFileSync(dst, 'utf8'), 'nameserver 203.0.113.1\n', 'the file under the mount never changed');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a symlink whose target is a bind mount (a shared /etc under ip netns exec): written through the link in place, the link kept', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'osdns-bindlink-'));
  try {
    const src = join(dir, 'netns-resolv.conf');
    const dst = join(dir, 'stub-resolv.conf');
    const link = join(dir, 'resolv.conf');
    writeFileSync(src, ORIGINAL);
    writeFileSync(dst, 'nameserver 203.0.113.1\n');
    symlinkSync('stub-resolv.conf', link);
    const r = await sh('unshare', ['-m', '--propagation', 'private', process.execPath, CHILD, 'bindlink', src, dst, link, join(dir, 'state')]);
    assert.equal(r.code, 0, r.stderr);
    const [applied, restored] = lines(r.stdout);
    assert.match(String(applied!.how), /in place at .*stub-resolv\.conf, the bind-mounted target of the symlink/);
    assert.equal(applied!.linkIsLink, true, 'the link in the shared directory is never replaced');
    assert.match(String(applied!.applied), /^nameserver 127\.0\.0\.1$/m);
    assert.deepEqual(restored, { restored: true, linkIsLink: true });
    assert.deepEqual(readFileSync(src), ORIGINAL, 'byte for byte');
    assert.equal(readFileSync(dst, 'utf8'), 'nameserver 203.0.113.1\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('in `ip netns exec`: glibc reads the file OsDns wrote; down restores it; after kill -9 the next start restores it byte for byte', { skip }, async () => {
  const lab = new Lab();
  const hostBefore = readFileSync('/etc/resolv.conf');
  let etcDir = '';
  const state = mkdtempSync(join(tmpdir(), 'osdns-netns-state-'));
  try {
    const ns = await lab.netns('d');
    // getaddrinfo's AI_ADDRCONFIG (getent ahosts*) wants a non-loopback IPv4 address before it asks for A records
    await must('ip', ['-n', ns, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb']);
    await must('ip', ['-n', ns, 'addr', 'add', '10.99.0.1/24', 'dev', 'va']);
    await must('ip', ['-n', ns, 'link', 'set', 'va', 'up']);
    await must('ip', ['-n', ns, 'link', 'set', 'vb', 'up']);
    etcDir = join('/etc/netns', ns);
    lab.onCleanup(() => rmSync(etcDir, { recursive: true, force: true }));
    mkdirSync(etcDir, { recursive: true });
    const nsFile = join(etcDir, 'resolv.conf');
    writeFileSync(nsFile, ORIGINAL);

    // up then down in one process
    const cycle = await lab.exec(ns, [process.execPath, CHILD, 'cycle', state]);
    assert.equal(cycle.code, 0, cycle.stderr);
    const [applied] = lines(cycle.stdout);
    assert.match(String(applied!.how), /written in place/);
    assert.match(String(applied!.applied), /^search mesh\.internal lab\.example$/m);
    assert.deepEqual(readFileSync(nsFile), ORIGINAL);

    // a daemon that dies with kill -9 while applied
    const p = lab.spawn(ns, [process.execPath, CHILD, 'serve', state]);
    const got = await waitForLine(p, 'ready');
    assert.equal((got[0]!.recovered as { action: string }).action, 'none');
    const written = readFileSync(nsFile, 'utf8');
    assert.match(written, /^# Managed by meshctl/);
    assert.match(written, /^nameserver 127\.0\.0\.1$/m);
    assert.match(written, /^options ndots:1 attempts:2$/m);
    assert.equal(statSync(nsFile).mode & 0o777, 0o644);
    // glibc's stub resolver, through the bind mount: a bare name gets the search domain
    const bare = await lab.exec(ns, ['getent', 'ahostsv4', 'nas']);
    assert.equal(bare.code, 0, `getent nas: ${bare.stderr}`);
    assert.match(bare.stdout, /^100\.64\.0\.5\s/m);
    const full = await lab.exec(ns, ['getent', 'hosts', 'nas.mesh.internal']);
    assert.match(full.stdout, /^100\.64\.0\.5\s+nas\.mesh\.internal/);

    process.kill(p.pid!, 'SIGKILL');
    await new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(null) : p.once('exit', r)));
    assert.equal(readFileSync(nsFile, 'utf8'), written, 'a killed process leaves its file behind');

    const rec = await lab.exec(ns, [process.execPath, CHILD, 'recover', state]);
    assert.equal(rec.code, 0, rec.stderr);
    const recovered = lines(rec.stdout)[0]!.recovered as { action: string; mode: string };
    assert.equal(recovered.action, 'restored');
    assert.equal(recovered.mode, 'direct');
    assert.deepEqual(readFileSync(nsFile), ORIGINAL, 'byte for byte after kill -9 and recover');
    assert.deepEqual(readFileSync('/etc/resolv.conf'), hostBefore, "the host's own resolv.conf was never touched");
  } finally {
    await lab.cleanup();
    rmSync(etcDir || '/nonexistent-osdns', { recursive: true, force: true });
    rmSync(state, { recursive: true, force: true });
  }
});

/** Where systemd-resolved and resolvectl are: MESHCTL_TEST_RESOLVED_ROOT (a `dpkg-deb -x` of the package) or installed under /. */
function resolvedRoot(): string | null {
  for (const r of [process.env.MESHCTL_TEST_RESOLVED_ROOT, '/']) {
    if (r && existsSync(join(r, 'lib/systemd/systemd-resolved')) && existsSync(join(r, 'usr/bin/resolvectl'))) return r;
  }
  return null;
}

interface Run {
  code: number;
  out: string;
}
interface AppliedLine {
  applied: OsDnsStatus;
  link: string;
  bare: Run;
  stubFile: string;
  full: Run;
  split: Run;
}
interface RecoveredLine {
  recovered: RecoverResult;
  link: string;
  full: Run;
}

test('resolved mode against a real systemd-resolved on its own bus in a namespace: link config, bare and split names, revert on recover', {
  skip: skip || toolsSkipReason('real systemd-resolved test', ['dbus-daemon']),
}, async (t) => {
  const where = resolvedRoot();
  if (where === null) {
    const how =
      'unpack it without installing (apt-get download systemd-resolved; dpkg-deb -x *.deb DIR) and set MESHCTL_TEST_RESOLVED_ROOT=DIR, ' +
      'or run `sudo npm run test:full`, which does that';
    return skipTest(t, 'real systemd-resolved test', `no systemd-resolved: install it, or ${how}`);
  }
  const lab = new Lab();
  const work = mkdtempSync(join(tmpdir(), 'osdns-resolved-'));
  try {
    const ns = await lab.netns('r');
    const r = await lab.exec(ns, ['unshare', '-m', '--propagation', 'private', process.execPath, RESOLVED_CHILD, where, work, join(work, 'state')], 60_000);
    const out = lines(r.stdout);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const [applied, recovered] = out as unknown as [AppliedLine, RecoveredLine];
    assert.equal(applied.applied.mode, 'resolved');
    assert.match(applied.applied.why, /127\.0\.0\.53/);
    assert.deepEqual(applied.applied.upstreams, ['127.0.0.53:53']);
    assert.match(applied.link, /DNS Servers: 10\.99\.0\.1/);
    assert.match(applied.link, /DNS Domain: (?=.*~corp\.example)(?=.*mesh\.internal)/);
    assert.match(applied.link, /-DefaultRoute/);
    assert.equal(applied.bare.code, 0, `bare name through resolved: ${applied.bare.out}`);
    assert.match(applied.bare.out, /nas: 100\.64\.0\.5/);
    assert.match(applied.stubFile, /^search mesh\.internal$/m, 'the suffix is a search domain in the file glibc reads');
    assert.equal(applied.full.code, 0, `glibc through the stub: ${applied.full.out}`);
    assert.match(applied.full.out, /^100\.64\.0\.5\s/m);
    assert.match(applied.split.out, /^10\.1\.2\.3\s/m, 'the split domain is routed to the link');
    assert.equal(recovered.recovered.action, 'restored');
    assert.doesNotMatch(recovered.link, /DNS Servers/);
    assert.notEqual(recovered.full.code, 0, 'after revert, mesh names no longer resolve');
  } finally {
    await lab.cleanup();
    rmSync(work, { recursive: true, force: true });
  }
});
