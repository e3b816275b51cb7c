// `meshctl dns query`, `meshctl dns status` and `up/set --accept-dns` through
// bin/meshctl against a local API server with a backend double on a real unix
// socket: answers printed dig-like, NXDOMAIN and SERVFAIL with their own exit
// statuses (8, 9), other response codes 1, bad input 2 without reaching the
// backend, and the accept-dns setting carried in the requests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT } from '../../src/cli/errors.js';
import { LocalApiServer } from '../../src/daemon/localapi-server.js';
import { BackendDouble, call, meshctlCli, socketDir } from '../daemon/localapi-helpers.js';

/** A local API server on a real unix socket with a backend double, and a client config dir; both removed after `fn`. */
async function withDouble(fn: (cli: (args: string[]) => ReturnType<typeof meshctlCli>, backend: BackendDouble, sock: string) => Promise<void>): Promise<void> {
  const { sock, done } = socketDir();
  const configDir = mkdtempSync(join(tmpdir(), 'meshctl-cli-'));
  const backend = new BackendDouble();
  const api = new LocalApiServer(sock, backend, { logger: () => {} });
  await api.start();
  try {
    await fn((args) => meshctlCli(['--socket', sock, ...args], configDir), backend, sock);
  } finally {
    await api.stop();
    done();
    rmSync(configDir, { recursive: true, force: true });
  }
}

test('dns query: answers dig-like; NXDOMAIN exits 8, SERVFAIL 9, other codes 1, bad input 2', async () => {
  assert.equal(EXIT.NXDOMAIN, 8);
  assert.equal(EXIT.SERVFAIL, 9);
  await withDouble(async (meshctl, backend, sock) => {
    const ok = await meshctl(['dns', 'query', 'nas.mesh.internal']);
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /^;; nas\.mesh\.internal A: NOERROR from 100\.100\.100\.100:53 in \d+ ms, 1 answer\(s\)$/m);
    assert.match(ok.out, /^nas\.mesh\.internal\.\t10\tIN\tA\t100\.64\.0\.5$/m);

    const nx = await meshctl(['dns', 'query', 'nxnope.mesh.internal', 'aaaa']);
    assert.equal(nx.code, 8, nx.err);
    assert.equal(nx.err, 'nxnope.mesh.internal AAAA: NXDOMAIN (no such name)\n');
    const fail = await meshctl(['dns', 'query', 'fail.example']);
    assert.equal(fail.code, 9, fail.err);
    assert.match(fail.err, /^fail\.example A: SERVFAIL/);
    const refused = await meshctl(['dns', 'query', 'refused.example']);
    assert.equal(refused.code, 1, refused.err);
    const json = await meshctl(['dns', 'query', '--json', 'nxnope.mesh.internal']);
    assert.equal(json.code, 8);
    assert.equal((JSON.parse(json.out) as { rcode: string }).rcode, 'NXDOMAIN');
    assert.deepEqual(backend.calls, [
      'dns query nas.mesh.internal A',
      'dns query nxnope.mesh.internal AAAA',
      'dns query fail.example A',
      'dns query refused.example A',
      'dns query nxnope.mesh.internal A',
    ]);

    const badType = await meshctl(['dns', 'query', 'nas', 'BOGUS']);
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
  });
});

test('dns status as text and JSON; up and set carry --accept-dns', async () => {
  await withDouble(async (meshctl, backend) => {
    const text = await meshctl(['dns', 'status']);
    assert.equal(text.code, 0, text.err);
    assert.match(text.out, /^MagicDNS:\s+on, names are NAME\.mesh\.internal$/m);
    assert.match(text.out, /^Listening:\s+100\.100\.100\.100:53, \[fd7a:115c:a1e0::53\]:53 \(UDP and TCP\)$/m);
    assert.match(text.out, /^OS:\s+direct: \/etc\/resolv\.conf is a plain file$/m);
    assert.match(text.out, /^Split DNS:\s+corp\.example -> 10\.1\.2\.3$/m);
    const json = await meshctl(['dns', 'status', '--json']);
    assert.deepEqual(JSON.parse(json.out), backend.dnsStatus());

    const set = await meshctl(['set', '--accept-dns=false']);
    assert.equal(set.code, 0, set.err);
    const bad = await meshctl(['set', '--accept-dns=maybe']);
    assert.equal(bad.code, 2, bad.err);
    await meshctl(['up', '--login-server', 'https://127.0.0.1:1', '--accept-dns=false', '--timeout', '1s']);
    await meshctl(['up', '--login-server', 'https://127.0.0.1:1', '--timeout', '1s']);
    const ups = backend.calls.filter((c) => c.startsWith('up ')).map((c) => JSON.parse(c.slice(3)) as { acceptDns?: boolean });
    assert.deepEqual(
      ups.map((u) => u.acceptDns),
      [false, undefined],
      'given: sent; not given: the daemon keeps its setting',
    );
    assert.ok(backend.calls.includes('prefs {"acceptDns":false}'), JSON.stringify(backend.calls));
  });
});
