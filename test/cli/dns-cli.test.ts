// `meshctl dns query`, `meshctl dns status` and `up/set --accept-dns` through
// bin/meshctl against a local API server with a backend double on a real unix
// socket: answers printed dig-like, NXDOMAIN and SERVFAIL with their own exit
// statuses (8, 9), other response codes 1, bad input 2 without reaching the
// backend, and the accept-dns setting carried in the requests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/cli/version.js';
import { EXIT } from '../../src/cli/errors.js';
import { LocalApiServer } from '../../src/daemon/localapi-server.js';
import { BackendDouble, call, socketDir } from '../daemon/localapi-helpers.js';

const bin = join(packageRoot(), 'bin', 'meshctl');

function meshctl(args: string[], configDir: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const env = { ...process.env, MESHCTL_CONFIG_DIR: configDir, MESHCTL_PLAIN: '1' };
    const p = spawn(process.execPath, [bin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('close', (code) => resolve({ code, out, err }));
  });
}

test('dns query: answers dig-like; NXDOMAIN exits 8, SERVFAIL 9, other codes 1, bad input 2', async () => {
  assert.equal(EXIT.NXDOMAIN, 8);
  assert.equal(EXIT.SERVFAIL, 9);
  const { sock, done } = socketDir();
  const configDir = mkdtempSync(join(tmpdir(), 'meshctl-cli-'));
  const backend = new BackendDouble();
  const api = new LocalApiServer(sock, backend, { logger: () => {} });
  await api.start();
  try {
    const ok = await meshctl(['--socket', sock, 'dns', 'query', 'nas.mesh.internal'], configDir);
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /^;; nas\.mesh\.internal A: NOERROR from 100\.100\.100\.100:53 in \d+ ms, 1 answer\(s\)$/m);
    assert.match(ok.out, /^nas\.mesh\.internal\.\t10\tIN\tA\t100\.64\.0\.5$/m);

    const nx = await meshctl(['--socket', sock, 'dns', 'query', 'nxnope.mesh.internal', 'aaaa'], configDir);
    assert.equal(nx.code, 8, nx.err);
    assert.equal(nx.err, 'nxnope.mesh.internal AAAA: NXDOMAIN (no such name)\n');
    const fail = await meshctl(['--socket', sock, 'dns', 'query', 'fail.example'], configDir);
    assert.equal(fail.code, 9, fail.err);
    assert.match(fail.err, /^fail\.example A: SERVFAIL/);
    const refused = await meshctl(['--socket', sock, 'dns', 'query', 'refused.example'], configDir);
    assert.equal(refused.code, 1, refused.err);
    const json = await meshctl(['--socket', sock, 'dns', 'query', '--json', 'nxnope.mesh.internal'], configDir);
    assert.equal(json.code, 8);
    assert.equal((JSON.parse(json.out) as { rcode: string }).rcode, 'NXDOMAIN');
    assert.deepEqual(backend.calls, [
      'dns query nas.mesh.internal A',
      'dns query nxnope.mesh.internal AAAA',
      'dns query fail.example A',
      'dns query refused.example A',
      'dns query nxnope.mesh.internal A',
    ]);

    const badType = await meshctl(['--socket', sock, 'dns', 'query', 'nas', 'BOGUS'], configDir);
    assert.equal(badType.code, 2, badType.err);
    assert.match(badType.err, /type must be one of A, AAAA, PTR/);
    const longName = await call(sock, 'POST', '/localapi/v1/dns/query', JSON.stringify({ name: 'a'.repeat(300) }));
    assert.equal(longName.status, 400, longName.body);
    const spaced = await call(sock, 'POST', '/localapi/v1/dns/query', JSON.stringify({ name: 'a b' }));
    assert.equal(spaced.status, 400, spaced.body);
    const dotted = await call(sock, 'POST', '/localapi/v1/dns/query', JSON.stringify({ name: 'a..b' }));
    assert.equal(dotted.status, 400, dotted.body);
    const extra = await call(sock, 'POST', '/localapi/v1/dns/query', JSON.stringify({ name: 'a', server: '8.8.8.8' }));
    assert.equal(extra.status, 400, extra.body);
    assert.equal(backend.calls.length, 5, 'bad queries never reach the backend');
  } finally {
    await api.stop();
    done();
    rmSync(configDir, { recursive: true, force: true });
  }
});

test('dns status as text and JSON; up and set carry --accept-dns', async () => {
  const { sock, done } = socketDir();
  const configDir = mkdtempSync(join(tmpdir(), 'meshctl-cli-'));
  const backend = new BackendDouble();
  const api = new LocalApiServer(sock, backend, { logger: () => {} });
  await api.start();
  try {
    const text = await meshctl(['--socket', sock, 'dns', 'status'], configDir);
    assert.equal(text.code, 0, text.err);
    assert.match(text.out, /^MagicDNS:\s+on, names are NAME\.mesh\.internal$/m);
    assert.match(text.out, /^Listening:\s+100\.100\.100\.100:53, \[fd7a:115c:a1e0::53\]:53 \(UDP and TCP\)$/m);
    assert.match(text.out, /^OS:\s+direct: \/etc\/resolv\.conf is a plain file$/m);
    assert.match(text.out, /^Split DNS:\s+corp\.example -> 10\.1\.2\.3$/m);
    const json = await meshctl(['--socket', sock, 'dns', 'status', '--json'], configDir);
    assert.deepEqual(JSON.parse(json.out), backend.dnsStatus());

    const set = await meshctl(['--socket', sock, 'set', '--accept-dns=false'], configDir);
    assert.equal(set.code, 0, set.err);
    const bad = await meshctl(['--socket', sock, 'set', '--accept-dns=maybe'], configDir);
    assert.equal(bad.code, 2, bad.err);
    await meshctl(['--socket', sock, 'up', '--login-server', 'https://127.0.0.1:1', '--accept-dns=false', '--timeout', '1s'], configDir);
    await meshctl(['--socket', sock, 'up', '--login-server', 'https://127.0.0.1:1', '--timeout', '1s'], configDir);
    const ups = backend.calls.filter((c) => c.startsWith('up ')).map((c) => JSON.parse(c.slice(3)) as { acceptDns?: boolean });
    assert.deepEqual(
      ups.map((u) => u.acceptDns),
      [false, undefined],
      'given: sent; not given: the daemon keeps its setting',
    );
    assert.ok(backend.calls.includes('prefs {"acceptDns":false}'), JSON.stringify(backend.calls));
  } finally {
    await api.stop();
    done();
    rmSync(configDir, { recursive: true, force: true });
  }
});
