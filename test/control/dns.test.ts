// The name service at the control server: the allocator keeps the resolver
// address out, routes and records are stored (and migrated into an existing
// database), the operator's input is checked, and every change reaches the
// nodes' map streams as a map their strict parser accepts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import sqlite from 'node-sqlite3-wasm';
import { allocateAddresses, RESOLVER_IPV4, RESOLVER_IPV4_OFFSET, resolverAddresses } from '../../src/control/addresses.js';
import { admin } from '../../src/control/admin-client.js';
import { addDnsRecord, addDnsRoute, applyDnsSuffix, checkDnsSuffix, dnsForMap, removeDnsRecord, removeDnsRoute, showDns } from '../../src/control/dns.js';
import { ControlError } from '../../src/control/protocol.js';
import { Registry } from '../../src/control/registry.js';
import { SqliteStore } from '../../src/control/sqlite-store.js';
import { UNDO_CHANGE_LOG, UNDO_IDENTITY } from './schema-undo.js';
import { stateFiles } from '../../src/control/state-dir.js';
import { MAX_DNS_RECORDS, MAX_DNS_ROUTES, MAX_RESOLVERS_PER_ROUTE } from '../../src/netmap/dns-names.js';
import { parseMapLine } from '../../src/netmap/parse.js';
import type { DnsConfig } from '../../src/netmap/types.js';
import { parseIp } from '../../src/util/netaddr.js';
import { harness, Node, openStream, registerBody, tempDir, until, type OpenStream } from './helpers.js';

const P = '/meshctl/v1';

async function withRegistry(fn: (r: Registry, dir: string) => Promise<void>): Promise<void> {
  const dir = tempDir();
  const store = new SqliteStore(stateFiles(dir).db);
  try {
    await fn(await Registry.open(store, { keyExpiryMs: null }), dir);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The error code and message `fn` throws (a ControlError), or 'no error'. */
async function refusal(fn: () => unknown): Promise<{ code: string; message: string }> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof ControlError, String(err));
    return { code: err.code, message: err.message };
  }
  return { code: 'no error', message: '' };
}

const node = (hostname: string, ipv4: string) => ({
  nodeKey: `key-${hostname}`,
  discoKey: 'd',
  hostname,
  requestedHostname: hostname,
  os: 'linux',
  version: 't',
  ipv4,
  ipv6: `fd00::${hostname.length}`,
  endpoints: [],
  homeRelay: null,
  ephemeral: false,
  authKeyId: 'k',
  createdAtMs: 0,
  lastSeenMs: null,
  keyExpiresAtMs: null,
  connected: false,
});

test('the allocator skips 100.100.100.100; the IPv6 resolver address cannot be a node address', async () => {
  await withRegistry(async (r) => {
    await r.store.setMeta('next_ipv4_offset', String(RESOLVER_IPV4_OFFSET - 1));
    const got = [await allocateAddresses(r.store), await allocateAddresses(r.store), await allocateAddresses(r.store)];
    assert.deepEqual(
      got.map((a) => a.ipv4),
      ['100.100.100.99', '100.100.100.101', '100.100.100.102'],
    );
    const [v4, v6] = resolverAddresses(r.ipv6Prefix);
    assert.equal(v4, RESOLVER_IPV4);
    assert.ok(v6.endsWith('::53'), v6);
    // a node's IPv6 address embeds its IPv4 one, so its low 32 bits are 0x64400000 or more, never 0x53
    for (const a of got) assert.notEqual(parseIp(a.ipv6).text, v6);
    assert.equal(parseIp(v6).text, v6, 'canonical text');
  });
});

test('routes and records round-trip through the store, and a schema-3 database gains the tables with its data kept', async () => {
  const dir = tempDir();
  const path = stateFiles(dir).db;
  try {
    let s = new SqliteStore(path);
    await s.setMeta('keep', 'me');
    await s.close();
    // what a database made before the DNS tables existed looks like
    const raw = new sqlite.Database(path);
    raw.exec(
      `${UNDO_CHANGE_LOG} ${UNDO_IDENTITY} DROP TABLE dns_routes; DROP TABLE dns_records; DROP TABLE route_approvals; DROP TABLE devices;
       ALTER TABLE nodes DROP COLUMN advertised_routes; ALTER TABLE nodes DROP COLUMN advertised_exit; PRAGMA user_version = 3;`,
    );
    raw.close();
    s = new SqliteStore(path);
    assert.equal(s.schemaVersion, 7);
    assert.equal(await s.getMeta('keep'), 'me');
    assert.equal(await s.putDnsRoute({ domain: 'b.example', resolvers: ['10.0.0.1'] }), true);
    assert.equal(await s.putDnsRoute({ domain: 'a.example', resolvers: ['10.0.0.2', '[fd00::1]:53'] }), true);
    assert.equal(await s.putDnsRoute({ domain: 'b.example', resolvers: ['10.0.0.3'] }), false, 'a second put replaces');
    assert.equal(await s.insertDnsRecord({ name: 'nas.home.arpa', type: 'A', value: '10.0.0.5' }), true);
    assert.equal(await s.insertDnsRecord({ name: 'nas.home.arpa', type: 'A', value: '10.0.0.5' }), false, 'an exact duplicate is not added');
    assert.equal(await s.insertDnsRecord({ name: 'nas.home.arpa', type: 'AAAA', value: 'fd00::5' }), true);
    await s.close();
    s = new SqliteStore(path);
    assert.deepEqual(await s.listDnsRoutes(), [
      { domain: 'a.example', resolvers: ['10.0.0.2', '[fd00::1]:53'] },
      { domain: 'b.example', resolvers: ['10.0.0.3'] },
    ]);
    assert.deepEqual(await s.listDnsRecords(), [
      { name: 'nas.home.arpa', type: 'A', value: '10.0.0.5' },
      { name: 'nas.home.arpa', type: 'AAAA', value: 'fd00::5' },
    ]);
    assert.equal(await s.deleteDnsRecords('nas.home.arpa', 'fd00::5'), 1);
    assert.equal(await s.deleteDnsRecords('nas.home.arpa'), 1);
    assert.equal(await s.deleteDnsRoute('a.example'), true);
    assert.equal(await s.deleteDnsRoute('a.example'), false);
    await s.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the suffix: checked, kept in the store, replaced only when given', async () => {
  await withRegistry(async (r) => {
    assert.deepEqual(await applyDnsSuffix(r.store, undefined), { suffix: 'mesh.internal', replaced: null });
    assert.deepEqual(await applyDnsSuffix(r.store, 'Home.Example'), { suffix: 'home.example', replaced: null });
    assert.deepEqual(await applyDnsSuffix(r.store, undefined), { suffix: 'home.example', replaced: null }, 'kept without the flag');
    assert.deepEqual(await applyDnsSuffix(r.store, 'lan.example'), { suffix: 'lan.example', replaced: 'home.example' });
    for (const bad of ['internal', 'mesh..internal', '.mesh.internal', 'mesh.internal.', 'me sh.internal', 'mesh.internal\nsearch x', `${'a.'.repeat(100)}x`]) {
      const e = await refusal(() => checkDnsSuffix(bad));
      assert.equal(e.code, 'BAD_REQUEST', bad);
      assert.match(e.message, /use a name such as mesh\.internal$/);
      assert.ok(!e.message.includes('\n'), 'one line');
    }
  });
});

test('routes: checked, bounded by MAX_DNS_ROUTES and MAX_RESOLVERS_PER_ROUTE, kept out of the suffix (a parent is fine), never to the nodes themselves', async () => {
  await withRegistry(async (r) => {
    assert.deepEqual(await addDnsRoute(r, 'Corp.Example', ['10.1.2.3', '[FD00::1]:5353']), {
      domain: 'corp.example',
      resolvers: ['10.1.2.3', '[fd00::1]:5353'],
      replaced: false,
    });
    assert.equal((await addDnsRoute(r, 'corp.example', ['10.1.2.4'])).replaced, true);
    const bad = async (domain: string, resolvers: string[], why: RegExp, code = 'BAD_REQUEST') => {
      const e = await refusal(async () => addDnsRoute(r, domain, resolvers));
      assert.equal(e.code, code, `${domain} ${resolvers}`);
      assert.match(e.message, why);
    };
    await bad('corp example', ['10.0.0.1'], /route domain "corp example": labels are/);
    await bad('x.mesh.internal', ['10.0.0.1'], /inside the mesh suffix/);
    await bad('mesh.internal', ['10.0.0.1'], /inside the mesh suffix/);
    assert.equal((await addDnsRoute(r, 'internal', ['10.0.0.1'])).replaced, false, 'a parent of the suffix may be routed');
    await removeDnsRoute(r, 'internal');
    await bad('x.example', ['10.0.0.1; rm -rf /'], /not an IP address or IP:port/);
    await bad('x.example', ['10.0.0.1', '10.0.0.1'], /given twice/);
    await bad('x.example', [], /1 to 4 resolvers/);
    bad(
      'x.example',
      Array.from({ length: MAX_RESOLVERS_PER_ROUTE + 1 }, (_, i) => `10.0.0.${i + 1}`),
      /MAX_RESOLVERS_PER_ROUTE/,
    );
    await bad('x.example', [RESOLVER_IPV4], /would loop/);
    await bad('x.example', [`${RESOLVER_IPV4}:53`], /would loop/);
    await bad('x.example', [`[${resolverAddresses(r.ipv6Prefix)[1]}]:53`], /would loop/);
    await r.store.transaction(async (tx) => {
      for (let i = (await tx.listDnsRoutes()).length; i < MAX_DNS_ROUTES; i++) await tx.putDnsRoute({ domain: `d${i}.example`, resolvers: ['10.0.0.1'] });
    });
    await bad('one-more.example', ['10.0.0.1'], /already 64 DNS routes \(MAX_DNS_ROUTES\)/);
    assert.equal((await addDnsRoute(r, 'corp.example', ['10.0.0.9'])).replaced, true, 'replacing one is allowed at the limit');
    assert.deepEqual(await removeDnsRoute(r, 'CORP.example'), { domain: 'corp.example' });
    assert.equal((await refusal(async () => removeDnsRoute(r, 'corp.example'))).code, 'NOT_FOUND');
  });
});

test('records: type from the address family, duplicates are no-ops, MAX_DNS_RECORDS, and a node name wins over a record', async () => {
  await withRegistry(async (r) => {
    assert.deepEqual(await addDnsRecord(r, 'NAS.home.arpa', '100.64.0.5'), { name: 'nas.home.arpa', type: 'A', value: '100.64.0.5', added: true });
    assert.deepEqual(await addDnsRecord(r, 'nas.home.arpa', 'FD00::0:5'), { name: 'nas.home.arpa', type: 'AAAA', value: 'fd00::5', added: true });
    assert.equal((await addDnsRecord(r, 'nas.home.arpa', '100.64.0.5')).added, false);
    for (const [name, addr, why] of [
      ['nas home.arpa', '10.0.0.1', /record name "nas home.arpa": labels are/],
      ['nas.home.arpa.', '10.0.0.1', /a dot at the start or the end/],
      ['x\n.home.arpa', '10.0.0.1', /record name "x.\.home\.arpa": labels are/],
      ['nas.home.arpa', '10.0.0.1:53', /not an IPv4 or IPv6 address/],
      ['nas.home.arpa', 'nas', /not an IPv4 or IPv6 address/],
    ] as const) {
      const e = await refusal(async () => addDnsRecord(r, name, addr));
      assert.equal(e.code, 'BAD_REQUEST');
      assert.match(e.message, why);
      assert.ok(!e.message.includes('\n'), 'one line');
    }
    // a record added for a name before a node takes it: the node wins in maps, the record stays stored
    await addDnsRecord(r, 'pi.mesh.internal', '10.0.0.7');
    await r.store.insertNode(node('pi', '100.64.0.9'));
    assert.ok(!dnsForMap(r.storedDns(), ['pi']).records.some((x) => x.name === 'pi.mesh.internal'));
    assert.deepEqual(showDns(r).shadowedRecords, [{ name: 'pi.mesh.internal', type: 'A', value: '10.0.0.7' }]);
    const taken = await refusal(async () => addDnsRecord(r, 'pi.mesh.internal', '10.0.0.8'));
    assert.equal(taken.code, 'BAD_REQUEST');
    assert.match(taken.message, /is node pi's name \(node names win\)/);
    assert.deepEqual(await removeDnsRecord(r, 'nas.home.arpa', 'fd00::5'), { name: 'nas.home.arpa', removed: 1 });
    assert.equal((await refusal(async () => removeDnsRecord(r, 'nas.home.arpa', 'fd00::5'))).code, 'NOT_FOUND');
    assert.equal((await refusal(async () => removeDnsRecord(r, 'nothing.example'))).code, 'NOT_FOUND');
    await r.store.transaction(async (tx) => {
      for (let i = (await tx.listDnsRecords()).length; i < MAX_DNS_RECORDS; i++)
        await tx.insertDnsRecord({ name: `r${i}.example`, type: 'A', value: '10.0.0.1' });
    });
    assert.match((await refusal(async () => addDnsRecord(r, 'more.example', '10.0.0.1'))).message, /already 1024 DNS records \(MAX_DNS_RECORDS\)/);
    assert.equal((await addDnsRecord(r, 'r5.example', '10.0.0.1')).added, false, 'a duplicate at the limit is still a no-op');
  });
});

/** The dns field of the newest map on a stream, through the node's strict parser. */
function latestDns(s: OpenStream): DnsConfig | undefined {
  const maps = s
    .lines()
    .map((l) => parseMapLine(JSON.parse(l)))
    .filter((x) => x?.type === 'map');
  const last = maps[maps.length - 1];
  return last?.type === 'map' ? last.map.dns : undefined;
}

test('admin dns commands on a running server reach a connected map stream within a second, as a map nodes accept', async () => {
  const h = await harness({ dnsSuffix: 'Home.Example' });
  let s: OpenStream | undefined;
  try {
    const n = new Node(h.server.publicKey!);
    assert.equal((await h.post(`${P}/register`, n.seal('register', registerBody(await h.authKey(), 'nas')))).status, 200);
    s = await openStream(h, n);
    await until(() => latestDns(s!) !== undefined, 5000, 'first map');
    const first = latestDns(s)!;
    assert.equal(first.suffix, 'home.example');
    assert.equal(first.resolvers[0], '100.100.100.100');
    assert.match(first.resolvers[1]!, /^fd[0-9a-f:]+::53$/);
    assert.deepEqual([first.routes, first.records], [[], []]);

    await admin.addDnsRoute(h.dir, 'corp.example', ['10.1.2.3', '10.1.2.4:5353']);
    await until(() => latestDns(s!)?.routes.length === 1, 1000, 'the route in the map');
    assert.deepEqual(latestDns(s)!.routes, [{ domain: 'corp.example', resolvers: ['10.1.2.3', '10.1.2.4:5353'] }]);

    await admin.addDnsRecord(h.dir, 'printer.home.arpa', 'fd00::9');
    await until(() => latestDns(s!)?.records.length === 1, 1000, 'the record in the map');
    assert.deepEqual(latestDns(s)!.records, [{ name: 'printer.home.arpa', type: 'AAAA', value: 'fd00::9' }]);

    const shown = await admin.showDns(h.dir);
    assert.deepEqual([shown.suffix, shown.routes.length, shown.records.length], ['home.example', 1, 1]);

    // refused over the socket with the same one-line error, and nothing changes
    await assert.rejects(
      admin.addDnsRecord(h.dir, 'nas.home.example', '10.0.0.1'),
      (e: unknown) => e instanceof ControlError && /node names win/.test(e.message),
    );
    await assert.rejects(admin.removeDnsRoute(h.dir, 'nope.example'), (e: unknown) => e instanceof ControlError && e.code === 'NOT_FOUND');

    await admin.removeDnsRoute(h.dir, 'corp.example');
    await admin.removeDnsRecord(h.dir, 'printer.home.arpa');
    await until(() => latestDns(s!)?.routes.length === 0 && latestDns(s!)?.records.length === 0, 1000, 'removals in the map');
  } finally {
    s?.res.destroy();
    await h.close();
  }
});

test('the suffix persists across restarts and a new --dns-suffix replaces it; without a server the commands work on the database', async () => {
  const dir = tempDir();
  let h = await harness({ dnsSuffix: 'one.example' }, dir);
  await h.server.stop();
  // no server: straight to the database
  await admin.addDnsRoute(dir, 'corp.example', ['10.1.2.3']);
  assert.equal((await admin.showDns(dir)).suffix, 'one.example');
  h = await harness({}, dir);
  assert.equal((await admin.showDns(dir)).suffix, 'one.example', 'kept without the flag');
  assert.deepEqual((await admin.showDns(dir)).routes, [{ domain: 'corp.example', resolvers: ['10.1.2.3'] }]);
  await h.server.stop();
  h = await harness({ dnsSuffix: 'two.example' }, dir);
  try {
    assert.equal((await admin.showDns(dir)).suffix, 'two.example');
  } finally {
    await h.close();
  }
});

test('a bad --dns-suffix stops the server from starting, with the cause', async () => {
  const dir = tempDir();
  try {
    await assert.rejects(harness({ dnsSuffix: 'internal' }, dir), /DNS suffix "internal": at least 2 labels/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A raw request on the admin socket: the status and the parsed body. */
function adminPost(dir: string, path: string, body: string): Promise<{ status: number; body: { error?: { code: string; message: string } } }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath: stateFiles(dir).adminSocket, method: 'POST', path, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('the admin socket refuses DNS request bodies of the wrong shape, and nothing is stored', async () => {
  const h = await harness();
  try {
    for (const [path, body, why] of [
      ['/admin/dns/routes', '{"domain":"corp.example","resolvers":"10.0.0.1"}', /resolvers must be a list of strings/],
      ['/admin/dns/routes', '{"domain":"corp.example","resolvers":[10]}', /resolvers must be a list of strings/],
      ['/admin/dns/routes', '{"resolvers":["10.0.0.1"]}', /domain must be a string/],
      ['/admin/dns/records', '{"name":"nas.home.arpa","address":["10.0.0.1"]}', /address must be a string/],
      ['/admin/dns/records', '["nas.home.arpa"]', /must be a JSON object/],
      ['/admin/dns/records/remove', '{"name":"nas.home.arpa","address":5}', /address must be a string/],
    ] as const) {
      const r = await adminPost(h.dir, path, body);
      assert.equal(r.status, 400, `${path} ${body}`);
      assert.equal(r.body.error?.code, 'BAD_REQUEST');
      assert.match(r.body.error?.message ?? '', why);
    }
    const shown = await admin.showDns(h.dir);
    assert.deepEqual([shown.routes, shown.records], [[], []]);
  } finally {
    await h.close();
  }
});
