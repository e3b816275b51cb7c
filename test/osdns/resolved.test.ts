// systemd-resolved mode against a recorded fake: systemd-resolved cannot run
// on the machines these tests run on (no systemd as PID 1, no system bus), so
// a `resolvectl` script on an injected path appends each argv to a log and the
// tests assert the exact calls. The fake fails or hangs on request.
import { type TestContext, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BACKUP_FILE, MARKER_FILE, OsDns, type OsDnsPlan } from '../../src/osdns/os-dns.js';

const STUB = Buffer.from(
  '# This is /run/systemd/resolve/stub-resolv.conf managed by man:systemd-resolved(8).\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n',
);
const PLAN: OsDnsPlan = {
  ifname: 'mesh0',
  servers: ['100.100.100.100', 'fd7a:115c:a1e0::53'],
  searchDomains: ['mesh.internal'],
  routingDomains: ['corp.example', 'mesh.internal'],
};

// one line per call, arguments separated by tabs; FAIL_ON=<subcommand> exits 1 for it, HANG_ON=<subcommand> sleeps
const FAKE = `#!/bin/sh
dir=$(dirname "$0")
line=""
for a in "$@"; do line="$line$a	"; done
printf '%s\\n' "$line" >> "$dir/calls.log"
if [ -f "$dir/fail-$1" ]; then echo "Failed to set DNS configuration: Link $2 not known" >&2; exit 1; fi
if [ -f "$dir/hang-$1" ]; then exec sleep 30; fi
exit 0
`;

/** A stub resolv.conf, a state dir and the fake resolvectl in a temp dir, removed when the test ends. */
function setup(tc: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), 'osdns-resolved-'));
  tc.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'resolv.conf');
  const state = join(dir, 'state');
  const bin = join(dir, 'resolvectl');
  writeFileSync(path, STUB);
  writeFileSync(bin, FAKE);
  chmodSync(bin, 0o755);
  const make = (o: { resolvectlTimeoutMs?: number } = {}) => new OsDns({ stateDir: state, resolvConfPath: path, resolvectl: bin, ...o });
  const calls = (): string[][] => {
    try {
      return readFileSync(join(dir, 'calls.log'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split('\t').slice(0, -1));
    } catch {
      return [];
    }
  };
  return { dir, path, state, make, calls };
}

const APPLY_CALLS = [
  ['dns', 'mesh0', '100.100.100.100', 'fd7a:115c:a1e0::53'],
  ['domain', 'mesh0', '~mesh.internal', 'mesh.internal', '~corp.example'],
  ['default-route', 'mesh0', 'false'],
];

test('resolved mode: the stub in resolv.conf selects it; exact resolvectl calls; resolv.conf untouched; upstream is the stub', async (tc) => {
  const t = setup(tc);
  const os = t.make();
  await os.apply(PLAN);
  assert.deepEqual(t.calls(), APPLY_CALLS);
  assert.deepEqual(readFileSync(t.path), STUB);
  assert.equal(existsSync(join(t.state, BACKUP_FILE)), false);
  assert.equal(JSON.parse(readFileSync(join(t.state, MARKER_FILE), 'utf8')).ifname, 'mesh0');
  const st = os.status();
  assert.equal(st.mode, 'resolved');
  assert.match(st.why, /127\.0\.0\.53.*resolvectl/);
  assert.deepEqual(st.calls, APPLY_CALLS);
  assert.deepEqual(st.upstreams, ['127.0.0.53:53']);

  await os.apply(PLAN);
  assert.equal(t.calls().length, 3, 'the same plan runs nothing');
  await os.apply({ ...PLAN, routingDomains: [] });
  assert.deepEqual(t.calls().slice(3), [APPLY_CALLS[0], ['domain', 'mesh0', '~mesh.internal', 'mesh.internal'], APPLY_CALLS[2]]);

  await os.restore();
  assert.deepEqual(t.calls().at(-1), ['revert', 'mesh0']);
  assert.equal(existsSync(join(t.state, MARKER_FILE)), false);
  assert.equal(os.status().mode, 'off');
  const n = t.calls().length;
  await os.restore();
  assert.equal(t.calls().length, n, 'restore with nothing applied runs nothing');
});

test('resolved mode: recover() after a crash reverts the link; a revert that fails (link gone) still clears the record', async (tc) => {
  const t = setup(tc);
  await t.make().apply(PLAN);
  const r = await t.make().recover();
  assert.equal(r.action, 'restored');
  assert.equal(r.mode, 'resolved');
  assert.deepEqual(t.calls().at(-1), ['revert', 'mesh0']);

  await t.make().apply(PLAN);
  writeFileSync(join(t.dir, 'fail-revert'), '');
  const r2 = await t.make().recover();
  assert.equal(r2.action, 'restored');
  assert.match(r2.detail, /resolvectl revert mesh0 failed .*Link mesh0 not known.*removed link/);
  assert.equal(existsSync(join(t.state, MARKER_FILE)), false);
});

test('resolved mode: a failing call reverts what was set and rejects naming the call and resolvectl’s message', async (tc) => {
  const t = setup(tc);
  writeFileSync(join(t.dir, 'fail-domain'), '');
  const os = t.make();
  await assert.rejects(os.apply(PLAN), /resolvectl domain mesh0 ~mesh\.internal mesh\.internal ~corp\.example failed: exit 1: Failed to set DNS/);
  assert.deepEqual(t.calls(), [APPLY_CALLS[0], APPLY_CALLS[1], ['revert', 'mesh0']]);
  assert.equal(existsSync(join(t.state, MARKER_FILE)), false);
  assert.equal(os.status().mode, 'off');
});

test('resolved mode: a hanging resolvectl is killed at the timeout; a missing one is named', async (tc) => {
  const t = setup(tc);
  writeFileSync(join(t.dir, 'hang-dns'), '');
  await assert.rejects(t.make({ resolvectlTimeoutMs: 300 }).apply(PLAN), /resolvectl dns mesh0 .* failed: timed out after 300 ms/);
  rmSync(join(t.dir, 'hang-dns'));
  const missing = new OsDns({ stateDir: t.state, resolvConfPath: t.path, resolvectl: join(t.dir, 'nope') });
  await assert.rejects(
    missing.apply(PLAN),
    /nope not found: install the Debian package systemd-resolved \(sudo apt-get install systemd-resolved\), or run with --accept-dns=false/,
  );
});
